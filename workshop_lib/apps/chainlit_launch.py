"""The script that ``chainlit run`` launches (started by ``chainlit_app.start()``; taught in 04_rag).

Chainlit loads this file by its path, so imports are absolute. Each question goes: clean it, retrieve
passages (``rag.retrieve``), refuse with ``rag.NOT_FOUND`` when none is relevant, else stream the model's
answer to the grounded prompt and attach each numbered passage as a clickable source.
"""
import asyncio
import threading
import time

import chainlit as cl
import openai
from chainlit.input_widget import Select

from workshop_lib import rag
from workshop_lib.apps import chainlit_app as app
from workshop_lib.errors import WorkshopError
from workshop_lib.runtime import endpoint


def _warm_up():
    """Load the retrieval index (and the embedding model) now, not on the first question."""
    try:
        rag.retrieve("llama-server", k=1)
    except Exception as exc:  # noqa: BLE001 -- a warm-up only; the first question reports the error properly
        print(f"Retrieval warm-up failed: {exc}", flush=True)


threading.Thread(target=_warm_up, daemon=True).start()


async def _connect():
    """The notebook's endpoint (``WORKSHOP_ENDPOINT``/``WORKSHOP_API_KEY`` set by the launcher), or None
    after telling the user it is down."""
    try:
        lab = await asyncio.to_thread(endpoint.connect, False)
    except WorkshopError as exc:
        await cl.Message(content=app.down_message(exc)).send()
        return None
    cl.user_session.set("lab", lab)
    if not cl.user_session.get("model") or cl.user_session.get("model") not in lab.available:
        cl.user_session.set("model", app.default_model(lab))
    return lab


@cl.on_chat_start
async def on_chat_start():
    lab = await _connect()
    if lab is None:
        return
    model = cl.user_session.get("model")
    await cl.ChatSettings([Select(id="model", label="Model (from the endpoint's /v1/models)",
                                  values=lab.available, initial_index=lab.available.index(model))]).send()


@cl.on_settings_update
async def on_settings_update(settings):
    cl.user_session.set("model", settings.get("model") or cl.user_session.get("model"))


@cl.on_message
async def on_message(message: cl.Message):
    question, notes = app.clean_question(message.content)
    if note := app.attachment_note(message.elements):
        notes.append(note)
    if not question:
        await cl.Message(content="\n\n".join(notes + [app.EMPTY_HINT])).send()
        return
    lab = cl.user_session.get("lab") or await _connect()  # the endpoint may have come back since
    if lab is None:
        return
    started = time.perf_counter()
    hits = await asyncio.to_thread(rag.retrieve, question, k=app.TOP_K)
    if not rag.is_relevant(hits):
        await cl.Message(content="\n\n".join(notes + [rag.NOT_FOUND])).send()
        return
    model = cl.user_session.get("model")
    reply = cl.Message(content="")
    for note in notes:
        await reply.stream_token(f"*{note}*\n\n")
    try:
        stream = await asyncio.to_thread(lab.client.chat.completions.create, model=model, stream=True,
                                         messages=rag.grounded_messages(question, hits),
                                         max_tokens=app.MAX_TOKENS, temperature=0.2)
        await app.stream_reply(stream, reply.stream_token)
    except (openai.APIConnectionError, openai.APITimeoutError) as exc:
        cl.user_session.set("lab", None)  # reconnect on the next question
        await reply.stream_token(app.down_message(exc))
        await reply.send()
        return
    except openai.APIError as exc:
        await reply.stream_token(f"**The model server refused the request** ({exc}). Pick another model "
                                 "in the settings, or ask a shorter question.")
        await reply.send()
        return
    await reply.stream_token(app.sources_footer(hits, model, time.perf_counter() - started))
    reply.elements = [cl.Text(name=name, content=body, display="side") for name, _label, body in app.sources(hits)]
    await reply.send()
