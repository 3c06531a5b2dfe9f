"""Relevance 0..1 is measured against the users who are not about the target.

Why: a fitness campaign that crawls fitness topics finds a corpus that is
40% fitness people; measured against everyone's median they scored below
0.5 and the demo's 健身人群 target had no prospect at all (0 of 70).
"""

import numpy as np

from nlp.meaning import background, calibrate


def _raw(target_share: float, n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    is_target = rng.random(n) < target_share
    raw = np.where(is_target, rng.normal(0.88, 0.03, n), rng.normal(0.75, 0.03, n))
    return raw, is_target


def test_a_large_target_group_still_scores_above_half():
    raw, is_target = _raw(0.4)
    score, centre, spread = calibrate(raw)
    assert (score[is_target] >= 0.5).mean() >= 0.8
    assert (score[~is_target] >= 0.5).mean() <= 0.01
    assert abs(centre - 0.75) < 0.01 and abs(spread - 0.03) < 0.01


def test_a_small_target_group_is_found_the_same_way():
    raw, is_target = _raw(0.05)
    score, _, _ = calibrate(raw)
    assert (score[is_target] >= 0.5).mean() >= 0.8 and (score[~is_target] >= 0.5).mean() <= 0.01


def test_without_a_separate_group_the_background_is_everyone():
    rng = np.random.default_rng(1)
    raw = rng.normal(0.75, 0.03, 2000)
    centre, spread = background(raw)
    assert abs(centre - np.median(raw)) < 1e-9
    score, _, _ = calibrate(raw)
    assert (score >= 0.5).mean() < 0.01


def test_new_users_are_placed_on_the_last_run_s_scale():
    raw, _ = _raw(0.4)
    _, centre, spread = calibrate(raw)
    again, c2, s2 = calibrate(np.array([0.88, 0.75]), centre, spread)
    assert (c2, s2) == (centre, spread) and again[0] > 0.5 > again[1]
