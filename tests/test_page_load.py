"""The page's chat-model load, without a browser: a stand-in tab."""
import pytest


class FlakyTab:
    """A stand-in tab whose first model load fails as Chromium's blob read once did."""

    def __init__(self, failures):
        self.failures, self.loads = failures, 0

    def evaluate(self, script, arg=None):
        if "loadChat" in script:
            self.loads += 1
            if self.loads <= self.failures:
                return {"ready": False, "error": "Error: loading the model failed (RuntimeError: File read failed: "
                                                 "NotReadableError: The requested file could not be read)"}
            return {"ready": True}
        return {"text": "ok"} if "chat(" in script else None


def test_a_blob_read_failure_is_retried_once_then_reported(monkeypatch):
    from workshop_lib.apps import page
    monkeypatch.setattr(page, "renderer_rss", lambda: None)
    tab = FlakyTab(failures=1)
    assert page.chat_in_tab(tab, "hi", 4)["load"]["ready"] and tab.loads == 2
    with pytest.raises(page.WorkshopError, match="NotReadableError"):
        page.chat_in_tab(FlakyTab(failures=2), "hi", 4)
