"""Hashtag topics (Web Appendix D): segmentation, GloVe means, k-means over hashtags with enough exemplars,
names from the paper's topic words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reach.features.text import WordVectors, load_glove_package, segment_hashtag
from reach.topics import hashtag_topics, hashtag_vector, name_clusters


@pytest.mark.parametrize("tag, words", [
    ("HomeOffice", ("home", "office")), ("homeoffice", ("home", "office")), ("#Christmas2020", ("christmas", "2020")),
    ("RetroGaming", ("retro", "gaming")), ("Yoga101", ("yoga", "101")), ("healthycooking", ("healthy", "cooking")),
])
def test_segmentation_into_dictionary_words(tag, words):
    assert segment_hashtag(tag) == words


def toy_vectors() -> WordVectors:
    # four well separated topic directions in 4-d, with the paper's names near them
    base = {"food": [1, 0, 0, 0], "gaming": [0, 1, 0, 0], "holidays": [0, 0, 1, 0], "life": [0, 0, 0, 1],
            "skills": [0.5, 0.5, -0.5, -0.5]}
    members = {"pasta": "food", "vegan": "food", "cake": "food", "boss": "gaming", "speed": "gaming",
               "gamer": "gaming", "christmas": "holidays", "santa": "holidays", "eve": "holidays",
               "morning": "life", "weekend": "life", "vibes": "life"}
    words = list(base) + list(members)
    rng = np.random.default_rng(0)
    vecs = [base[w] for w in base] + [np.array(base[t]) + 0.05 * rng.normal(size=4) for t in members.values()]
    return WordVectors("toy", "test", {w: i for i, w in enumerate(words)}, np.array(vecs, np.float32), True)


def test_toy_topics_are_recovered_and_named():
    wv = toy_vectors()
    tags = {"PastaNight": 20, "VeganCake": 30, "BossSpeed": 25, "GamerVibes": 2, "SantaEve": 40, "ChristmasEve": 16,
            "MorningVibes": 18, "WeekendVibes": 22, "NoWordsHere": 50}
    videos = [t for t, n in tags.items() for _ in range(n)]
    res = hashtag_topics(videos, wv, n_topics=4, min_exemplars=15, seed=0, names=("life", "holidays", "food", "gaming"))
    h = res.hashtags.set_index("hashtag")
    assert h.loc["PastaNight", "topic"] == h.loc["VeganCake", "topic"] == "food"
    assert h.loc["SantaEve", "topic"] == h.loc["ChristmasEve", "topic"] == "holidays"
    assert h.loc["MorningVibes", "topic"] == h.loc["WeekendVibes", "topic"] == "life"
    assert h.loc["BossSpeed", "topic"] == "gaming"
    assert not h.loc["GamerVibes", "in_fit"] and h.loc["GamerVibes", "topic"] is not None   # < 15 videos
    assert h.loc["NoWordsHere", "n_found"] == 0 and pd.isna(h.loc["NoWordsHere", "topic"])
    assert sorted(res.clusters["topic"]) == ["food", "gaming", "holidays", "life"]
    assert h.loc["VeganCake", "words"] == "vegan cake"


def test_too_few_hashtags_is_an_error():
    with pytest.raises(ValueError, match="cannot form"):
        hashtag_topics(["PastaNight"] * 20, toy_vectors(), n_topics=2, min_exemplars=15)


def test_glove_names_the_paper_examples():
    wv = load_glove_package()
    examples = {"food": ["HomeCooked", "HealthyCooking"], "holidays": ["Christmas2020", "HappyHolidays"],
                "gaming": ["GamerGoals", "GamingTikTok"]}
    centres = np.stack([np.mean([hashtag_vector(t, wv)[1] for t in tags], 0) for tags in examples.values()])
    names, sims = name_clusters(centres, wv, ("food", "holidays", "gaming"))
    assert names == list(examples) and (sims > 0.4).all()
