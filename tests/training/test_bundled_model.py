"""The model shipped in model/: present, loadable offline, deterministic, described honestly."""

from __future__ import annotations

import json

import pytest

from gpt_tui.engine.loading import bundled_model_dir, load_model
from gpt_tui.engine.sampling import SamplingParams
from gpt_tui.engine.session import Session


@pytest.fixture(scope="module")
def bundled():
    path = bundled_model_dir()
    assert path is not None, "model/model.safetensors and model/config.json must be committed"
    return Session(load_model(None, device="cpu", dtype="float32"))


def test_bundled_model_is_small_enough_to_ship():
    path = bundled_model_dir()
    assert (path / "model.safetensors").stat().st_size <= 64 * 2**20
    card = (path / "MODEL_CARD.md").read_text()
    meta = json.loads((path / "config.json").read_text())
    best = min(p["val_loss"] for p in meta["training"]["curve"])
    assert f"{best}" in card  # the card shows the loss curve of this very checkpoint


def test_bundled_model_generates_the_same_text_for_the_same_seed(bundled):
    ids = bundled.encode("Once upon a time").ids
    params = SamplingParams(temperature=0.8, top_k=40)
    first = "".join(t.text for t in bundled.generate(ids, params, 24, seed=1))
    second = "".join(t.text for t in bundled.generate(ids, params, 24, seed=1))
    assert first == second and len(first) > 24


def test_bundled_model_accepts_any_gpt2_token(bundled):
    """Ids the corpus never had are accepted as input and never predicted."""
    analysis = bundled.analyse("草莓 strawberry SolidGoldMagikarp")
    assert analysis.n_tokens > 3
    probs = analysis.top_probs(analysis.n_tokens - 1)
    assert probs.sum() <= 1.0 + 1e-5 and probs[0] > 0


def test_bundled_neighbours_are_meaningful(bundled):
    """The card's claim, checked: " he" sits among pronouns, " three" among numbers."""
    he = {n.text for n in bundled.neighbours(bundled.word_token(" he"), top=8).neighbours}
    three = {n.text for n in bundled.neighbours(bundled.word_token(" three"), top=8).neighbours}
    assert len(he & {" she", " they", " we", " I", " it", " you", " He", " She"}) >= 2, he
    assert len(three & {" two", " four", " five", " six", " seven", " ten", " eight", " nine", " twelve"}) >= 2, three


MOTION = (" leap", " jump", " skip", " hop")


def test_the_seeds_motion_verbs_are_not_rare(bundled):
    for word in MOTION:
        token = bundled.word_token(word)
        assert not bundled.is_rare(token), (word, bundled.token_count(token))


# Issue 15's target. On the bundled model (stage 7, averaged weights) ' jump' is 4th among ' leap''s
# neighbours without the common direction (744th as the rows are) and 86th among ' hop''s; stage 6's last
# weights had it 14th.
def test_jump_is_a_neighbour_of_leap_or_hop(bundled):
    """The seeds' own example: verbs of motion sit together in the embedding, once the direction
    every row shares (how common a token is; `c` in the session, --without-common) is projected out.
    As the rows are, that direction is most of a rare verb's row (the test below)."""
    found = {}
    for word in (" leap", " hop"):
        result = bundled.neighbours(bundled.word_token(word), top=10, without_common=True)
        found[word] = [n.text for n in result.neighbours]
    assert any(" jump" in texts for texts in found.values()), found


def test_hop_is_a_neighbour_of_leap_and_leap_of_jump(bundled):
    """The seeds' motion verbs are neighbours as the rows are (raw cosine, the default view)."""
    found = [n.text for n in bundled.neighbours(bundled.word_token(" leap"), top=10).neighbours]
    assert " hop" in found, found
    found = [n.text for n in bundled.neighbours(bundled.word_token(" jump"), top=10).neighbours]
    assert " leap" in found, found


def test_the_motion_verbs_rows_are_mostly_the_shared_direction_and_the_panel_says_so(bundled):
    """Why the raw cosines of rare verbs need the view above: their rows lie mostly along the
    direction all rows share, which Neighbours.mostly_shared reports (and the panel shows)."""
    for word in (" leap", " hop"):
        result = bundled.neighbours(bundled.word_token(word), top=10)
        assert result.mostly_shared, (word, result.shared)
    assert not bundled.neighbours(bundled.word_token(" he"), top=10).mostly_shared


def test_the_second_copy_of_a_repeated_passage_is_predicted_far_better(bundled):
    """In-context copying (induction): scored as `gpt-tui score` scores it."""
    from gpt_tui.training.probes import copying_score_of_session

    score = copying_score_of_session(bundled, passages=4)
    assert score.first_perplexity >= 5 * score.second_perplexity, score


def test_the_bundled_model_ships_its_default_knobs(bundled):
    """model/generation_config.json is read at load and is what generation starts from."""
    data = json.loads((bundled_model_dir() / "generation_config.json").read_text())
    params = bundled.default_sampling
    assert (params.temperature, params.top_k, params.top_p) == (data["temperature"], data["top_k"], data["top_p"])
    assert bundled.loaded.generation.from_model
    chosen = json.loads((bundled_model_dir() / "knobs.json").read_text())["chosen"]
    assert (params.temperature, params.top_k, params.top_p) == (chosen["temperature"], chosen["top_k"], chosen["top_p"])
