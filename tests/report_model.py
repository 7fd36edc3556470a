"""A scripted model for reports (a remote provider, outside the system) and the documents it
is tried on: it answers each prompt as a model would, with a plan, questions, and sections
whose sentences quote the passages it was given."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from tests.fake_llm_server import Fail, Hang, Reply

DOCUMENTS = [
    (
        "construction.md",
        b"""# Building the Varnholm lighthouse

The lighthouse of Varnholm was built in 1847 by the harbour guild. The tower is made of
granite quarried on the island of Skarv. It stands forty-one metres above the sea.

Construction took three summers because storms stopped the work every winter.
""",
    ),
    (
        "lamps.md",
        b"""# The lamps of Varnholm

The first lamp of the Varnholm lighthouse burned whale oil. A paraffin lamp replaced it in
1902. Electric light came to the tower in 1936, powered by a diesel generator.

The Fresnel lens was ground in Paris and has never been replaced.
""",
    ),
    (
        "keepers.md",
        b"""# The keepers of Varnholm

Three keepers lived at the Varnholm lighthouse in shifts of four weeks. The last keeper,
Ingrid Falk, left in 1989 when the light was automated. Keepers logged every passing ship
in a ledger that the harbour museum now keeps.
""",
    ),
]

PLAN = {
    "title": "The Varnholm lighthouse",
    "sections": [
        {
            "title": "Construction",
            "questions": ["When was the lighthouse built?", "What is the tower made of?"],
        },
        {
            "title": "Lamps",
            "questions": ["What did the first lamp burn?", "When did electric light come?"],
        },
        {
            "title": "Keepers",
            "questions": ["How did the keepers live?", "When did the last keeper leave?"],
        },
    ],
}
FOUNDED = "The lighthouse of Varnholm was built in 1847 by the harbour guild"
INVENTED = "The keepers kept a tame walrus called Olaf in the lantern room"


class Model:
    """A scripted model: it plans, writes questions, and writes each section from the passages
    it was given: a sentence on the section's subject from each of two passages, the founding
    year (a claim every section repeats), and one claim no passage supports."""

    def __init__(self) -> None:
        self.broken: set[str] = set()  # sections it answers with an error
        self.hang: set[str] = set()  # sections it never answers (once)
        self.sections: list[str] = []  # the section titles it was asked to write, in order
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply | Fail | Hang:
        system = str(body["messages"][0]["content"])
        asked = str(body["messages"][-1]["content"])
        title = _line(asked, "Section") if "Section: " in asked else ""
        if system.startswith("You plan"):
            return Reply(json.dumps(PLAN))
        if system.startswith("You write research questions"):
            subject = f"the {title.lower()} of the Varnholm lighthouse"
            return Reply(
                json.dumps(
                    {
                        "questions": [
                            f"What is known about {subject}?",
                            f"Who or what shaped {subject}?",
                        ]
                    }
                )
            )
        with self._lock:
            self.sections.append(title)
        if title in self.hang:
            self.hang.discard(title)  # the retry is answered
            return Hang(seconds=20)
        if title in self.broken:
            return Fail(400, f"scripted refusal for {title}")
        quoted = re.findall(r"^\[(\d+)\][^\n]*\n<passage>\n(.*?)\n</passage>", asked, re.S | re.M)
        stem = title.lower().rstrip("s")[:6]
        written: list[str] = []
        for number, text in quoted:
            on_subject = [s for s in _sentences(text) if stem in s.lower()]
            if on_subject and len(written) < 2:
                written.append(f"{on_subject[0]} [{number}].")
        for number, text in quoted:
            if FOUNDED in text:
                written.append(f"{FOUNDED} [{number}].")
        return Reply(" ".join([*written, f"{INVENTED} [1]."]))


def _line(text: str, name: str) -> str:
    found = re.search(rf"^{name}: (.+)$", text, re.M)
    assert found, text
    return found.group(1).strip()


def _sentences(text: str) -> list[str]:
    body = " ".join(line for line in text.splitlines() if line and not line.startswith("#"))
    return [s.strip().rstrip(".") for s in body.split(". ") if s.strip()]
