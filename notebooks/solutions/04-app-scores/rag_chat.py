"""Ask the llama.cpp documentation: lesson 04's chat app. Open it, change it, run it:

    chainlit run notebooks/apps/rag_chat.py --host 127.0.0.1 --port 8123

Each question: retrieve passages (``rag.retrieve``), refuse below the similarity threshold, else stream
the model's answer, cited by construction (``rag.CitedAnswer``), withhold it if it names terms no passage
contains (``refusal.withhold_unsupported``), and attach each passage as a clickable source. The
endpoint is the one ``wl.connect()`` finds (the notebook passes its own via WORKSHOP_ENDPOINT and
WORKSHOP_API_KEY). ``workshop_lib`` keeps only the noise: retrieval, the grounded prompt, the endpoint,
and cleaning input and error messages (``chainlit_app``).
"""
import asyncio
import time

import chainlit as cl
import openai
from chainlit.input_widget import Select

from workshop_lib import rag
from workshop_lib.rag import refusal
from workshop_lib.apps import chainlit_app as app
from workshop_lib.runtime import capabilities, clients

TOP_K = 5  # passages per question: each costs prompt tokens, and a small model gets lost in a long prompt


def source_label(number, chunk, score):
    """How the answer lists one source: its number (Chainlit makes "[n]" a link), file, heading and
    similarity to the question (the score the refusal threshold compares)."""
    return f"[{number}] {chunk.path} › {chunk.heading} (similarity {score:.2f})"


@cl.on_chat_start
async def on_chat_start():
    lab = await app.connect_or_say(cl)
    if lab is not None:
        model = cl.user_session.get("model")
        await cl.ChatSettings([Select(id="model", label="Model (from the endpoint's /v1/models)",
                                      values=lab.available, initial_index=lab.available.index(model))]).send()


@cl.on_settings_update
async def on_settings_update(settings):
    cl.user_session.set("model", settings.get("model") or cl.user_session.get("model"))


@cl.on_message
async def on_message(message: cl.Message):
    question, notes = app.clean_question(message.content, message.elements)
    if not question:
        await cl.Message(content="\n\n".join(notes + [app.EMPTY_HINT])).send()
        return
    lab = cl.user_session.get("lab") or await app.connect_or_say(cl)  # the endpoint may be back by now
    if lab is None:
        return
    started, model = time.perf_counter(), cl.user_session.get("model")
    reply = cl.Message(content="")
    for note in notes:  # shown at once: the answer may take a while
        await reply.stream_token(f"*{note}*\n\n")
    hits = await asyncio.to_thread(rag.retrieve, question, k=TOP_K)
    lines = [source_label(n, chunk, score) for n, (chunk, score) in enumerate(hits, start=1)]
    if not rag.is_relevant(hits):  # nothing close enough: refuse without asking the model
        await reply.stream_token(app.not_found(hits, "no passage is close enough to the question"))
        await reply.stream_token(app.footer(lines, {"refused": True}, None, time.perf_counter() - started))
        await reply.send()
        return
    style = await asyncio.to_thread(capabilities.structured_style, lab)  # asks the server once, then cached
    answer = rag.CitedAnswer(lab.client, model, question, hits, style=style)
    try:
        with clients.closing(answer):  # a closed tab cancels this task: the server stops generating too
            async for piece in app.in_thread(answer):
                await reply.stream_token(piece)
    except openai.APIError as exc:
        cl.user_session.set("lab", None)  # connect again on the next question
        await reply.stream_token(app.error_message(exc))
        await reply.send()
        return
    # the second refusal stage: an answer naming flags, endpoints or options that no passage contains is withheld
    result = refusal.withhold_unsupported(answer.result(), hits)
    if result["refused"]:  # the refusal replaces whatever was streamed
        await reply.stream_token(app.refusal(notes, hits, result), is_sequence=True)
    await reply.stream_token(app.footer(lines, result, model, time.perf_counter() - started))
    reply.elements = [cl.Text(name=f"[{n}]", content=app.passage(chunk), display="side")
                      for n, (chunk, _score) in enumerate(hits, start=1)]
    await reply.send()
