# EXERCISE 06-webui-chat
import httpx  # what the openai package uses underneath; requests or urllib.request work the same way


def ask_open_webui(url, token, model, question):
    """Ask ``model`` through Open WebUI's own API, signed in with ``token``; return the answer's text."""
    response = httpx.post(
        f"{url}/api/chat/completions",
        headers={"Authorization": f"Bearer {token}"},  # who is asking: Open WebUI refuses requests without it
        json={"model": model, "messages": [{"role": "user", "content": question}], "max_tokens": 16,
              "temperature": 0, "stream": False},
        timeout=120,
        trust_env=False,  # Open WebUI runs on 127.0.0.1: no proxy between us
    )
    response.raise_for_status()  # 401 with a wrong token
    return response.json()["choices"][0]["message"]["content"]
