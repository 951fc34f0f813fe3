"""Errors a learner can act on: each says what went wrong and what to do about it."""


class WorkshopError(RuntimeError):
    """Base class: ``problem`` is what happened, ``fix`` is what to type or change."""

    def __init__(self, problem: str, fix: str):
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}\n  What to do: {fix}")


class DataFileError(WorkshopError):
    """A file under data/ is missing or malformed."""


class UnknownModelError(WorkshopError):
    """A model alias that neither the registry nor the endpoint knows."""


class ModelFileError(WorkshopError):
    """A model part package is missing, or the assembled file fails its checksum."""


class BuildError(WorkshopError):
    """llama-server could not be built from source."""


class PortInUseError(WorkshopError):
    """The requested port is taken by another program."""


class EndpointError(WorkshopError):
    """The model endpoint is down, unreachable, or too slow."""
