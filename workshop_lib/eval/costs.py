"""Cost per request: local time and energy, or a cloud price per token (taught in 02_model_comparison).

The numbers come from ``data/prices.json``, a table of editable assumptions with its date: nothing
here is a quote. Local cost counts only the electricity the request's seconds draw at an assumed wattage.
"""
import json
from pathlib import Path

from ..config import DATA_DIR
from ..errors import DataFileError

PRICES = DATA_DIR / "prices.json"


def load_prices(path=PRICES) -> dict:
    """The price table, checked: cloud entries need both per-million prices, local needs watts and kWh price."""
    try:
        table = json.loads(Path(path).read_text(encoding="utf-8"))
        for entry in table["cloud"].values():
            float(entry["input_per_million"]), float(entry["output_per_million"])
        float(table["local"]["watts_while_generating"]), float(table["local"]["electricity_per_kwh"])
        table["as_of"]
    except FileNotFoundError:
        raise DataFileError(f"No price table at {path}.", "Restore data/prices.json from git.") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataFileError(f"{path} is not a valid price table ({type(exc).__name__}: {exc}).",
                            "Keep the shape of the shipped file: cloud.<model>.input_per_million / "
                            "output_per_million, local.watts_while_generating / electricity_per_kwh, as_of.") from exc
    return table


def local_cost(seconds, watts: float, per_kwh: float):
    """Electricity for ``seconds`` of inference at ``watts``: seconds * W / 3.6e6 kWh * price."""
    return seconds * watts / 3.6e6 * per_kwh


def cloud_cost(prompt_tokens, completion_tokens, price: dict):
    """What a cloud API would bill for a request of that many input and output tokens."""
    return (prompt_tokens * price["input_per_million"] + completion_tokens * price["output_per_million"]) / 1e6
