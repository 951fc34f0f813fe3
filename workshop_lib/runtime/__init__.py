"""The runtime: how a notebook reaches a model.

``endpoint`` (connect), ``models`` (weights from packages), ``llamacpp`` and ``server`` (the embedded
llama-server), ``foundry`` and ``convert`` (Foundry Local, bring your own model), ``checkup`` (doctor).
Imports only the foundation (``config``, ``errors``, ``datasets``).
"""
