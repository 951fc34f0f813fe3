import pytest

from workshop_lib.datasets import load_prompts
from workshop_lib.errors import DataFileError


def test_first_chat_prompts_load_as_messages():
    prompts = load_prompts("first_chat")
    assert len(prompts) >= 3
    assert all(p[-1]["role"] == "user" and p[-1]["content"] for p in prompts)


@pytest.mark.parametrize("text, message", [
    ("{oops", "not a valid prompt set"),
    ('{"prompts": [{"id": "a"}]}', "no text in 'user'"),
    ('{"items": []}', "not a valid prompt set"),
])
def test_malformed_prompt_files_are_explained(tmp_path, text, message):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "bad.json").write_text(text)
    with pytest.raises(DataFileError, match=message):
        load_prompts("bad", tmp_path)


def test_unknown_prompt_set_lists_the_existing_ones():
    with pytest.raises(DataFileError, match="first_chat"):
        load_prompts("no_such_set")
