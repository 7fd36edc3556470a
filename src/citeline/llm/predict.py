"""The model gateway's prediction contract: `POST /models/{model_id}/predict` with
`{"inputs": [...], "version"?}` answers `{"model", "version", "predictions": [...]}`.

Each input is a prompt; its prediction is the model's reply. The request runs as one
`llm.predict` job on a worker (where local models stay loaded), through the registry, so
aliases and A/B splits apply: one caller's inputs all go to the same variant."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from citeline.jobs.context import JobContext
from citeline.jobs.registry import JobKind
from citeline.llm.messages import ChatRequest, Message, TextDelta
from citeline.llm.service import ModelService

PREDICT_KIND = "llm.predict"
MAX_INPUTS = 64


class PredictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: list[str] = Field(min_length=1, max_length=MAX_INPUTS, description="Prompts")
    version: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="A version of the model, not its alias"
    )
    max_tokens: int = Field(default=256, ge=1, le=4096)
    temperature: float = Field(default=0.0, ge=0, le=2)


class PredictOut(BaseModel):
    model: str = Field(description="The model or alias asked")
    version: str = Field(description="The version that served the predictions: name@N")
    predictions: list[str]


def target_of(model_id: str, version: int | None) -> str:
    return f"{model_id}@{version}" if version is not None else model_id


def predict(context: JobContext[object]) -> dict[str, Any]:
    service = ModelService(
        context.sessions, context.connection, context.settings, lease=context.lease
    )
    args = context.args
    served: list[str] = []
    predictions: list[str] = []
    for index, prompt in enumerate(args["inputs"]):
        context.check_cancelled()
        request = ChatRequest(
            messages=[Message.user(str(prompt))],
            max_tokens=int(args["max_tokens"]),
            temperature=float(args["temperature"]),
        )
        reply = service.start(
            str(args["target"]),
            request,
            subject=context.owner,
            job_id=context.job_id,
            workspace_id=context.workspace_id,
        )
        try:
            text = "".join(event.text for event in reply if isinstance(event, TextDelta))
        finally:
            reply.close()
        predictions.append(text)
        served.append(reply.served_by.label)
        context.progress((index + 1) / len(args["inputs"]))
    return {
        "model": args["model"],
        "version": served[0],
        "versions": served,
        "predictions": predictions,
    }


PREDICT = JobKind(PREDICT_KIND, predict, queue="high", timeout_seconds=900, max_attempts=1)
