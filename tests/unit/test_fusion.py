"""Fusion of keyword (BM25) and dense (cosine) rankings, on hand-made rankings."""

from __future__ import annotations

import uuid

import pytest

from citeline.knowledge.retrieval import (
    KEYWORD_WEIGHT,
    Hit,
    fuse,
    keyword_sharpness,
    reciprocal_rank_fusion,
)

A, B, C, D, E, F = (uuid.UUID(int=i) for i in range(1, 7))


def order(hits: list[Hit]) -> list[uuid.UUID]:
    return [hit.chunk_id for hit in hits]


def test_sharpness_is_how_far_the_best_match_stands_out() -> None:
    flat = [(A, 5.0), (B, 4.9), (C, 4.8), (D, 4.7), (E, 4.5)]
    sharp = [(A, 10.0), (B, 2.0), (C, 1.5), (D, 1.2), (E, 1.0)]
    assert keyword_sharpness(flat, 5) == pytest.approx(0.1)
    assert keyword_sharpness(sharp, 5) == pytest.approx(0.9)
    assert keyword_sharpness([(A, 3.0), (B, 1.0)], 5) == 1.0  # fewer matches than the rank
    assert keyword_sharpness([], 5) == 0.0


def test_one_method_alone_keeps_its_order_and_scores() -> None:
    dense = [(B, 0.8), (A, 0.7), (C, 0.2)]
    hits = fuse({"dense": dense}, 2)
    assert order(hits) == [B, A]
    assert [h.score for h in hits] == [0.8, 0.7]
    assert hits[0].ranks == {"dense": 1}
    keyword = [(C, 7.5), (A, 2.0)]
    hits = fuse({"keyword": keyword}, 10)
    assert order(hits) == [C, A]
    assert [h.score for h in hits] == [7.5, 2.0]
    assert hits[1].scores == {"keyword": 2.0}


def test_a_distinctive_keyword_match_lifts_a_near_tie_but_not_a_clear_dense_winner() -> None:
    # BM25 finds one chunk far ahead of the rest (a command name, say): sharpness 0.9.
    keyword = [(C, 10.0), (D, 1.5), (E, 1.2), (F, 1.1), (A, 1.0)]
    near_tie = [(A, 0.71), (B, 0.70), (C, 0.68)]
    hits = fuse({"keyword": keyword, "dense": near_tie}, 3)
    assert order(hits)[0] == C
    assert hits[0].score == pytest.approx(0.68 + KEYWORD_WEIGHT * 0.9 * 1.0)
    clear = [(A, 0.90), (B, 0.70), (C, 0.60)]
    assert order(fuse({"keyword": keyword, "dense": clear}, 3))[0] == A
    # The weight and the sharpness exponent are parameters.
    heavier = fuse({"keyword": keyword, "dense": clear}, 3, keyword_weight=1.0, sharpness_power=2)
    assert order(heavier)[0] == C
    assert heavier[0].score == pytest.approx(0.60 + 1.0 * 0.9**2 * 1.0)


def test_a_flat_keyword_ranking_leaves_the_dense_order_alone() -> None:
    # Common words matched everywhere about equally (a paraphrased question): sharpness 0.04.
    keyword = [(C, 5.0), (B, 4.9), (D, 4.9), (E, 4.85), (A, 4.8)]
    dense = [(A, 0.71), (B, 0.70), (C, 0.69)]
    assert order(fuse({"keyword": keyword, "dense": dense}, 3)) == [A, B, C]
    # Equal-weight reciprocal rank fusion lets the keyword ranking overturn it.
    assert order(reciprocal_rank_fusion({"keyword": keyword, "dense": dense}, 3))[0] != A


def test_every_hit_keeps_each_methods_rank_and_score() -> None:
    keyword = [(D, 6.0), (A, 3.0)]
    dense = [(A, 0.8), (B, 0.5)]
    hits = {h.chunk_id: h for h in fuse({"keyword": keyword, "dense": dense}, 10)}
    assert set(hits) == {A, B, D}
    assert hits[A].ranks == {"keyword": 2, "dense": 1}
    assert hits[A].scores == {"keyword": 3.0, "dense": 0.8}
    assert hits[B].ranks == {"keyword": None, "dense": 2}
    assert hits[D].scores == {"keyword": 6.0, "dense": None}
    # Missing from the dense list: that list's lowest cosine, plus its keyword share.
    assert hits[D].score == pytest.approx(0.5 + KEYWORD_WEIGHT * 1.0 * 6.0 / 6.0)
    assert hits[B].score == pytest.approx(0.5)


def test_ties_break_by_chunk_id_and_limit_applies() -> None:
    dense = [(C, 0.5), (A, 0.5), (B, 0.5)]
    assert order(fuse({"dense": dense}, 2)) == [A, B]
    assert fuse({"keyword": [], "dense": []}, 5) == []


def test_unknown_methods_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown retrieval methods"):
        fuse({"sparse": [(A, 1.0)]}, 5)
