"""Properties of the front end over real configurations and their mutations."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pykeepalived.config import load, load_text
from pykeepalived.config.diagnostics import Diagnostic, render
from pykeepalived.config.dump import config_from_json, config_to_json, dump_text
from tests.corpus import corpus

CORPUS = corpus()
IDS = [f"{p.parent.name}/{p.name}" for p in CORPUS]
TEXTS = [p.read_text(encoding="utf-8", errors="replace") for p in CORPUS]


@pytest.mark.parametrize("path", CORPUS, ids=IDS)
def test_parsing_twice_gives_equal_models(path: Path) -> None:
    first, second = (
        load(
            str(path),
        ),
        load(str(path)),
    )
    assert first.config is not None
    assert first.config == second.config
    assert first.diagnostics == second.diagnostics


@pytest.mark.parametrize("path", CORPUS, ids=IDS)
def test_json_dump_loads_back_to_the_same_model(path: Path) -> None:
    config = load(str(path)).config
    assert config is not None
    assert config_from_json(config_to_json(config)) == config
    assert dump_text(config)  # the text dump renders every model


_NOISE = st.sampled_from(
    [*"{}\"'\\$@~!#\n \t\u00a0", "${", "~SEQ(", "@^", "include x", "$A=", "0", "-1", "9999999999"]
)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, max(len(text) - 1, 0)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "dup_line", "truncate"]))
        if op == "insert":
            text = text[:pos] + draw(_NOISE) + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 20)) :]
        elif op == "replace":
            text = text[:pos] + draw(_NOISE) + text[pos + 1 :]
        elif op == "dup_line":
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
            text = "\n".join(lines)
        else:
            text = text[:pos]
    return text


def _check(text: str, tmp: str) -> None:
    result = load_text(text, tmp)
    assert result.config is not None
    for d in result.diagnostics:
        assert isinstance(d, Diagnostic)
        assert d.location.line >= 0
        render(d)  # every diagnostic renders
    assert config_from_json(config_to_json(result.config)) == result.config


@given(text=mutated())
def test_mutations_give_diagnostics_never_a_traceback(text: str) -> None:
    _check(text, "mutated.conf")


@pytest.mark.slow
def test_seeded_fuzz_run() -> None:
    """A fixed-seed fuzz run over the corpus (the same 600 mutations on every CI run)."""
    rng = random.Random(20261121)
    noise = [*"{}\"'\\$@~!#\n \t\u00a0", "${", "~SEQ(i, 3) ", "@x ", "$A=", "-1", "0x"]
    for _ in range(600):
        text = rng.choice(TEXTS)
        for _ in range(rng.randint(1, 5)):
            pos = rng.randrange(max(len(text), 1))
            if rng.random() < 0.5:
                text = text[:pos] + rng.choice(noise) + text[pos:]
            else:
                text = text[:pos] + text[pos + rng.randint(1, 30) :]
        _check(text, "fuzz.conf")
