"""The apps learners open in a browser: the Chainlit RAG app, Open WebUI, the in-browser inference page.
Top layer: may import everything below it, nothing imports it.
"""
