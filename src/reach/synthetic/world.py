"""The synthetic TikTok world (DESIGN section 6): a data-generating process with a known causal answer.

Structural model (paper 1, Eq. 6, with the confounding the paper worries about made explicit):

* creator i: talent ``q_i`` (moves past hearts, hence the instrument), cross-posting ``u_i`` (unobserved,
  raises both followers and impressions), content style ``s_i`` (K-dim, raises followers);
* video j: content latent ``c_j = centroid(hashtag) + 0.6 s_i + noise`` (visible only through media and text);
* ``log F_i = f0 + 1.5 q_i + 0.9 u_i + 0.6 w_F's_i + 0.7 nu_i``   (followers at posting);
* ``log past hearts_i = k0 + q_i + noise``  (the instrument: moves followers and nothing else);
* ``log R_j = mu + w_R'c_j + post effects + int_{l_ref}^{log F} FEI(s; theta_j) ds + 0.5 u_i + eps_j``.

``u`` is independent of content and post statistics, so E[e | x] = 0 and the Deep IV target h(l, x) equals the
structural g(l, x), which is written to the truth files. Daily plays follow Web Appendix G, Eq. 17:
``y_t = A log t + B`` with post-level A = exp(a), B = exp(b) and y_14 = R.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reach.synthetic.fei import N_BUMPS, FeiParams, fei_curve, fei_integral
from reach.tiers import TIERS

TOPICS = ("life", "holidays", "skills", "food", "gaming")
TACTICS = ("informational", "entertaining", "socializing")
CAMPAIGN_TYPES = ("s_shaped", "linear", "concave")
N_CONTENT = 6
LOG_FOLLOWERS_REF = float(np.log(60_000))

ORGANIC_HASHTAGS: dict[str, tuple[str, ...]] = {
    "life": ("WeekendVibes", "GoodMorning", "SundayReset", "MorningRoutine", "HomeOffice", "NightRoutine",
             "SelfCare", "CityWalk", "FamilyTime", "CozyNight", "DailyVlog", "CaféMornings"),
    "holidays": ("Christmas2020", "HappyHolidays", "HalloweenCostume", "NewYearsEve", "HolidayBaking", "SantaClaus",
                 "WinterWonderland", "GiftIdeas", "ThanksgivingDinner", "DecorateWithMe", "HolidayLights", "SnowDay"),
    "skills": ("Yoga101", "InkDrawing", "GuitarLesson", "LearnToCode", "DanceTutorial", "MakeupTutorial", "FallDIY",
               "WomenInStem", "HomeWorkout", "PaintWithMe", "LifeHacks", "LanguageLearning"),
    "food": ("HomeCooked", "HealthyCooking", "EasyRecipe", "PastaNight", "BakingTime", "StreetFood", "CoffeeLover",
             "VeganEats", "BreakfastIdeas", "SpicyChallenge", "MealPrep", "PizzaParty"),
    "gaming": ("GamerGoals", "GamingTikTok", "SpeedRun", "BossFight", "FallGuysMoments", "RetroGaming",
               "GamingSetup", "NoobVsPro", "LevelUp", "GameNight", "ConsoleWars", "EsportsLife"),
}

# (name, campaign type, topic, tactic, description): special effects -> S-shaped, self-expression -> linear,
# product demonstration -> concave (paper 1, Table 5).
CAMPAIGNS: tuple[tuple[str, str, str, str, str], ...] = (
    ("SparkleSwitch", "s_shaped", "life", "entertaining",
     "Use our #SparkleSwitch effect, reveal your sparkle look, then post with #SparkleSwitch for a chance to win."),
    ("DenimDanceOff", "linear", "skills", "socializing",
     "Throw on your favourite denim, learn this dance and put your own spin on it. #DenimDanceOff"),
    ("BlendItUp", "concave", "food", "informational",
     "Show us how you blend your morning smoothie with the new blender in three steps. #BlendItUp"),
    ("GlowUpFilter", "s_shaped", "holidays", "entertaining",
     "Try our holiday #GlowUpFilter effect and show the before and after of your festive glow."),
    ("ShowYourStyle", "linear", "life", "socializing",
     "Outfit change on the beat: show us your style and celebrate with your best transition. #ShowYourStyle"),
    ("RinseAndShine", "concave", "skills", "informational",
     "Demonstrate your #RinseAndShine routine: cleanse, rinse and shine in three, two, one."),
)

TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "life": ("weekend", "morning", "coffee", "routine", "home", "walk", "relax", "family", "friends", "sunday"),
    "holidays": ("christmas", "holiday", "gift", "snow", "santa", "lights", "festive", "party", "family", "winter"),
    "skills": ("learn", "tutorial", "how", "practice", "yoga", "draw", "guitar", "tips", "lesson", "skill"),
    "food": ("recipe", "cook", "pasta", "bake", "delicious", "kitchen", "dinner", "spicy", "breakfast", "taste"),
    "gaming": ("game", "level", "boss", "play", "win", "controller", "stream", "speedrun", "noob", "pro"),
}
TACTIC_WORDS: dict[str, tuple[str, ...]] = {
    "informational": ("step", "guide", "info", "fact", "know", "how", "easy", "learn"),
    "entertaining": ("funny", "lol", "wait", "crazy", "omg", "vibe", "mood", "dance"),
    "socializing": ("duet", "join", "tag", "friend", "together", "us", "challenge", "share"),
}
QUALITY_WORDS = (("meh", "random", "ok", "whatever"), ("amazing", "perfect", "best", "wow"))
GENERIC_HASHTAGS = ("fyp", "foryou", "viral", "trending", "tiktok", "funny", "love", "duet", "comedy", "music")


@dataclass(frozen=True)
class WorldSpec:
    """Scale and shape of the synthetic world (the ``world`` block of the config)."""

    seed: int
    n_hashtags: int = 48
    videos_per_hashtag: int = 110
    n_sponsored: int = 6
    days_tracked: int = 14
    start_date: str = "2020-10-01"
    hashtag_days_span: int = 60
    cross_listed_share: float = 0.05
    repeat_creator_share: float = 0.15
    creator_file_share: float = 0.9
    voice_share: float = 0.15
    junk_share: float = 0.002
    campaign_size_factor: float = 1.0   # sponsored hashtags get this many times their drawn size (paper 1's challenges
                                        # are large; benchmarks/fei_identification.py varies it)
    videos_per_campaign: int | None = None  # set: each sponsored hashtag gets about this many videos (+-20%) and the
                                        # organic ones share n_organic x videos_per_hashtag (paper 1: 1,500-2,000
                                        # per challenge); None: all hashtags share n_hashtags x videos_per_hashtag
    impressions_noise_sd: float = 0.6   # sd of the idiosyncratic noise in log impressions (Eq. 6)


@dataclass
class World:
    """Everything the simulator decided, before it is written out in scraper form."""

    hashtags: pd.DataFrame      # one row per hashtag
    creators: pd.DataFrame      # one row per creator (with hidden traits)
    videos: pd.DataFrame        # one row per video (truth columns included)
    listings: pd.DataFrame      # one row per (video, hashtag listing, scrape day)
    creator_posts: pd.DataFrame # one row per creator post (creator post lists)
    content: np.ndarray         # n_videos x N_CONTENT true content latent
    fei_params: FeiParams


def expected_videos(n_hashtags: int, videos_per_hashtag: int, n_sponsored: int,
                    videos_per_campaign: int | None = None) -> int:
    """Videos in a world of this shape before any are drawn (exact up to rounding and the campaign size factor):
    what `shards: auto` divides by videos_per_shard."""
    if videos_per_campaign is None:
        return n_hashtags * videos_per_hashtag
    n_sponsored = min(n_sponsored, n_hashtags)
    return (n_hashtags - n_sponsored) * videos_per_hashtag + n_sponsored * videos_per_campaign


def stable_int(text: str, modulo: int = 2**31 - 1) -> int:
    """A platform-independent hash of a string (used for ids)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") % modulo


def _hashtag_table(spec: WorldSpec, rng: np.random.Generator) -> pd.DataFrame:
    n_sponsored = min(spec.n_sponsored, spec.n_hashtags)
    n_organic = spec.n_hashtags - n_sponsored
    max_organic = sum(len(v) for v in ORGANIC_HASHTAGS.values())
    if n_organic > max_organic:
        raise ValueError(f"world.n_hashtags - n_sponsored = {n_organic} exceeds the {max_organic} organic names")
    rows = []
    for k in range(n_organic):
        topic = TOPICS[k % len(TOPICS)]
        name = ORGANIC_HASHTAGS[topic][k // len(TOPICS)]
        rows.append({"hashtag": name, "topic": topic, "tactic": TACTICS[int(rng.integers(len(TACTICS)))],
                     "campaign_type": "organic", "is_commerce": False, "description": ""})
    for k in range(n_sponsored):
        name, ctype, topic, tactic, desc = CAMPAIGNS[k % len(CAMPAIGNS)]
        if k >= len(CAMPAIGNS):
            name = f"{name}{k // len(CAMPAIGNS) + 1}"
        rows.append({"hashtag": name, "topic": topic, "tactic": tactic, "campaign_type": ctype,
                     "is_commerce": True, "description": desc})
    tab = pd.DataFrame(rows)
    tab["challenge_id"] = [str(10**15 + stable_int("challenge/" + h) % 10**15) for h in tab["hashtag"]]
    tab["start_day"] = np.sort(rng.integers(0, max(1, spec.hashtag_days_span), size=len(tab)))
    tab["trending_days"] = rng.integers(6, 16, size=len(tab))
    weight = rng.lognormal(0, 0.25, len(tab))  # hashtag sizes vary; the total is n_hashtags x videos_per_hashtag
    if spec.videos_per_campaign is None:
        tab["n_videos"] = np.maximum(5, np.round(spec.videos_per_hashtag * len(tab) * weight / weight.sum())).astype(int)
    else:
        if spec.videos_per_campaign < 5:
            raise ValueError(f"world.videos_per_campaign must be at least 5, got {spec.videos_per_campaign}")
        commerce = tab["is_commerce"].to_numpy()
        size = np.zeros(len(tab))
        if (~commerce).any():
            size[~commerce] = spec.videos_per_hashtag * (~commerce).sum() * weight[~commerce] / weight[~commerce].sum()
        if commerce.any():   # the same draws, shrunk to a log-sd of 0.1: campaigns of about the stated size
            shrunk = weight[commerce] ** 0.4
            size[commerce] = spec.videos_per_campaign * shrunk / shrunk.mean()
        tab["n_videos"] = np.maximum(5, np.round(size)).astype(int)
    if spec.campaign_size_factor != 1.0:
        if spec.campaign_size_factor <= 0:
            raise ValueError(f"world.campaign_size_factor must be positive, got {spec.campaign_size_factor}")
        commerce = tab["is_commerce"].to_numpy()
        tab.loc[commerce, "n_videos"] = np.maximum(5, np.round(tab.loc[commerce, "n_videos"] * spec.campaign_size_factor)
                                                   ).astype(int)
    return tab


def _centroids(tab: pd.DataFrame) -> np.ndarray:
    """Hashtag-level content centroid: topic in dims 0-1, tactic in dim 2, campaign style in dim 4."""
    angle = {t: 2 * np.pi * i / len(TOPICS) for i, t in enumerate(TOPICS)}
    tactic_pos = {"informational": -1.0, "entertaining": 0.3, "socializing": 1.2}
    cen = np.zeros((len(tab), N_CONTENT))
    cen[:, 0] = [1.5 * np.cos(angle[t]) for t in tab["topic"]]
    cen[:, 1] = [1.5 * np.sin(angle[t]) for t in tab["topic"]]
    cen[:, 2] = [tactic_pos[t] for t in tab["tactic"]]
    cen[:, 4] = tab["campaign_type"].map({"organic": 0.0, "s_shaped": 1.8, "linear": 0.6, "concave": -1.2}).to_numpy()
    cen[:, 2] += (tab["campaign_type"] == "linear").to_numpy() * 0.8
    return cen


def _fei_parameters(tab_rows: pd.DataFrame, deviation: np.ndarray, rng: np.random.Generator) -> FeiParams:
    """Per-video FEI parameters: topic shape + tactic bump, or the campaign shape; modulated by content."""
    n = len(tab_rows)
    const = np.zeros(n)
    amp = np.zeros((n, N_BUMPS))
    peak = np.full((n, N_BUMPS), 10.0)
    width = np.ones((n, N_BUMPS))
    drop = np.zeros(n)
    mid = np.full(n, 9.0)
    scale = np.ones(n)
    topic_shape = {  # const, [(amp, peak, width)] in natural-log followers; Figure 8's shapes
        "life": (0.06, [(0.30, 7.6, 0.9), (0.18, 11.5, 1.0)]),
        "holidays": (0.03, [(0.18, 7.6, 0.9), (0.10, 11.5, 1.0)]),
        "skills": (0.06, [(0.32, 7.3, 0.8), (0.20, 11.0, 1.0)]),
        "food": (0.05, [(0.40, 8.6, 1.4)]),
        "gaming": (0.05, [(0.38, 11.8, 1.5)]),
    }
    tactic_bump = {"informational": (0.12, 8.3, 1.0), "entertaining": (0.10, 8.0, 1.0), "socializing": (0.15, 12.3, 1.2)}
    topics = tab_rows["topic"].to_numpy()
    tactics = tab_rows["tactic"].to_numpy()
    ctypes = tab_rows["campaign_type"].to_numpy()
    for j in range(n):
        if ctypes[j] == "s_shaped":
            const[j], amp[j, 0], peak[j, 0], width[j, 0] = 0.05, 0.42, 9.6, 1.8
        elif ctypes[j] == "linear":
            const[j] = 0.26
        elif ctypes[j] == "concave":
            const[j], drop[j], mid[j], scale[j] = 0.04, 0.55, 8.5, 1.3
        else:
            c0, bumps = topic_shape[topics[j]]
            const[j] = c0
            for k, (a, p, w) in enumerate(bumps):
                amp[j, k], peak[j, k], width[j, k] = a, p, w
            amp[j, 2], peak[j, 2], width[j, 2] = tactic_bump[tactics[j]]
    # Heterogeneity by content (the part of c_j not explained by the hashtag): peaks move with pacing (dim 2),
    # elasticities scale with quality (dim 3).
    shift = np.clip(0.4 * deviation[:, 2], -0.8, 0.8)
    gain = np.exp(np.clip(0.2 * deviation[:, 3], -0.4, 0.4))
    return FeiParams(const=const * gain, amp=amp * gain[:, None], peak=peak + shift[:, None], width=width,
                     drop=drop * gain, mid=mid + shift, scale=scale)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def simulate(spec: WorldSpec) -> World:
    """Draw the world. Every random draw flows from ``spec.seed``."""
    rng = np.random.default_rng(spec.seed)
    tab = _hashtag_table(spec, rng)
    centroids = _centroids(tab)

    # ---- videos and creators -------------------------------------------------------------------------------
    hashtag_index = np.repeat(np.arange(len(tab)), tab["n_videos"].to_numpy())
    n_videos = hashtag_index.size
    n_repeat = int(round(spec.repeat_creator_share * n_videos))
    n_creators = n_videos - n_repeat
    creator_of = np.concatenate([np.arange(n_creators), rng.integers(0, n_creators, size=n_repeat)])
    rng.shuffle(creator_of)

    talent = rng.normal(size=n_creators)                     # q_i -> instrument
    crosspost = rng.normal(size=n_creators)                  # u_i, unobserved confounder
    style = rng.normal(size=(n_creators, N_CONTENT))         # s_i
    w_followers = np.array([0.3, -0.2, 0.5, 0.7, 0.2, 0.3])
    w_followers /= np.linalg.norm(w_followers)
    log_followers = 11.0 + 1.5 * talent + 0.9 * crosspost + 0.6 * style @ w_followers + 0.7 * rng.normal(size=n_creators)
    log_followers = np.clip(log_followers, np.log(2.0), np.log(7.1e7))
    followers = np.maximum(2, np.round(np.exp(log_followers))).astype(np.int64)
    log_past_hearts_level = 7.0 + 1.0 * talent + 0.45 * rng.normal(size=n_creators)
    verified = rng.random(n_creators) < _sigmoid(1.6 * (np.log(followers) - 16.0))
    creator_ids = rng.choice(10**18, size=n_creators, replace=False) + 6 * 10**18
    creators = pd.DataFrame({
        "author_id": creator_ids.astype(str),
        "unique_id": [f"creator_{stable_int(f'{spec.seed}/{i}') % 10**9:09d}" for i in range(n_creators)],
        "followers": followers, "talent": talent, "crosspost": crosspost,
        "log_past_hearts_level": log_past_hearts_level, "verified": verified,
        "has_post_list": rng.random(n_creators) < spec.creator_file_share,
    })
    if creators["unique_id"].duplicated().any():  # pragma: no cover - 1e9 space
        raise RuntimeError("creator uniqueId collision; change world.seed")

    content = centroids[hashtag_index] + 0.6 * style[creator_of] + 0.8 * rng.normal(size=(n_videos, N_CONTENT))
    deviation = content - centroids[hashtag_index]
    vid_tab = tab.iloc[hashtag_index].reset_index(drop=True)
    fei_params = _fei_parameters(vid_tab, deviation, rng)

    # ---- post statistics (Web Appendix A) -------------------------------------------------------------------
    late = rng.random(n_videos) < 0.15                                      # days after the hashtag starts
    offset = np.where(late, rng.integers(3, 40, size=n_videos), np.minimum(rng.geometric(0.55, size=n_videos) - 1, 6))
    first_day = tab["start_day"].to_numpy()[hashtag_index] + offset
    hashtag_age = offset
    is_trending = offset < tab["trending_days"].to_numpy()[hashtag_index]
    old = rng.random(n_videos) < 0.12
    video_age = np.where(old, rng.uniform(10, 600, n_videos), rng.lognormal(np.log(1.3), 0.6, n_videos) - 0.5)
    video_age = np.clip(video_age, 0.01, None)
    rank = np.zeros(n_videos, dtype=int)
    for h in range(len(tab)):
        idx = np.flatnonzero(hashtag_index == h)
        rank[idx] = rng.permutation(idx.size) + 1
    num_hashtags = np.maximum(1, rng.poisson(5.6, n_videos) + 1)
    has_fyp = (rng.random(n_videos) < 0.6) & (num_hashtags >= 2)
    num_trending = np.minimum(num_hashtags - has_fyp.astype(int), is_trending.astype(int) + rng.poisson(0.3, n_videos))
    is_sponsored = (vid_tab["is_commerce"].to_numpy()) & (rng.random(n_videos) < 0.03)
    duration = np.round(rng.uniform(5, 30, n_videos) + 2 * np.clip(deviation[:, 2], -2, 2)).clip(5, 30)

    # ---- impressions: paper 1 Eq. 6 with the FEI integral as the follower part ------------------------------
    lf_video = np.log(followers[creator_of].astype(float))
    follower_part = fei_integral(fei_params, lf_video[:, None], LOG_FOLLOWERS_REF)[np.arange(n_videos), 0] \
        if n_videos else np.zeros(0)
    w_impressions = np.array([0.10, -0.10, 0.20, 0.60, 0.10, 0.20])
    post_effect = (-0.12 * np.log(rank) + 0.15 * has_fyp + 0.05 * num_trending + 0.20 * is_trending
                   + 0.30 * verified[creator_of] + 0.4 * is_sponsored)
    structural_wo_level = content @ w_impressions + post_effect + follower_part
    level = 12.9 - float(np.median(structural_wo_level))
    noise = spec.impressions_noise_sd * rng.normal(size=n_videos)
    confounding = 0.5 * crosspost[creator_of]
    log_impressions = level + structural_wo_level + confounding + noise
    impressions = np.maximum(100, np.round(np.exp(log_impressions))).astype(np.int64)

    # ---- growth (Web Appendix G, Eqs. 17-18): y_t = A log t + B, y_T = impressions -------------------------
    t_max = spec.days_tracked
    start_share = _sigmoid(0.2 + 0.25 * is_trending - 0.05 * np.log(rank) + 0.3 * rng.normal(size=n_videos))
    b_level = start_share * impressions
    a_rate = (impressions - b_level) / np.log(t_max)
    videos = pd.DataFrame({
        "video_id": (rng.choice(10**17, size=n_videos, replace=False) + 68 * 10**17).astype(str),
        "hashtag": vid_tab["hashtag"], "topic": vid_tab["topic"], "tactic": vid_tab["tactic"],
        "campaign_type": vid_tab["campaign_type"], "creator": creator_of,
        "author_id": creators["author_id"].to_numpy()[creator_of], "unique_id": creators["unique_id"].to_numpy()[creator_of],
        "followers": followers[creator_of], "log_followers": lf_video,
        "first_day": first_day, "hashtag_age": hashtag_age, "is_trending": is_trending, "video_age": video_age,
        "rank": rank, "num_hashtags": num_hashtags, "has_fyp": has_fyp, "num_trending": num_trending,
        "is_sponsored": is_sponsored, "is_verified": verified[creator_of], "duration": duration,
        "impressions": impressions, "log_impressions": np.log(impressions.astype(float)),
        "h_at_followers": level + content @ w_impressions + post_effect + follower_part,
        "fei_at_followers": fei_curve(fei_params, lf_video[:, None])[np.arange(n_videos), 0] if n_videos else np.zeros(0),
        "confounder": crosspost[creator_of], "noise": noise, "level": level,
        "growth_a": np.log(a_rate), "growth_b": np.log(b_level),
    })
    for k in range(N_CONTENT):
        videos[f"content_{k}"] = content[:, k]

    videos = _captions_music_stickers(videos, tab, content, deviation, rng, spec)
    listings = _listings(videos, tab, spec, rng)
    creator_posts = _creator_posts(videos, creators, spec, rng)
    return World(hashtags=tab, creators=creators, videos=videos, listings=listings,
                 creator_posts=creator_posts, content=content, fei_params=fei_params)


def _captions_music_stickers(videos: pd.DataFrame, tab: pd.DataFrame, content: np.ndarray, deviation: np.ndarray,
                             rng: np.random.Generator, spec: WorldSpec) -> pd.DataFrame:
    n = len(videos)
    captions, stickers, extra_tags = [], [], []
    all_tags = tab["hashtag"].tolist()
    for j in range(n):
        topic, tactic = videos.at[j, "topic"], videos.at[j, "tactic"]
        n_words = int(rng.integers(3, 12))
        pool = (TOPIC_WORDS[topic], TACTIC_WORDS[tactic], QUALITY_WORDS[int(content[j, 3] > 0)])
        which = rng.choice(3, size=n_words, p=(0.55, 0.25, 0.20))
        words = [pool[w][int(rng.integers(len(pool[w])))] for w in which]
        tags = [videos.at[j, "hashtag"]]
        if videos.at[j, "has_fyp"]:
            tags.append("fyp")
        others = [t for t in all_tags if t != tags[0]]
        while len(tags) < videos.at[j, "num_hashtags"]:
            tags.append(others[int(rng.integers(len(others)))] if rng.random() < 0.3 else
                        GENERIC_HASHTAGS[1 + int(rng.integers(len(GENERIC_HASHTAGS) - 1))])
        tags = list(dict.fromkeys(tags))
        extra_tags.append(tags)
        captions.append(" ".join(words) + " " + " ".join("#" + t for t in tags))
        n_stick = int(rng.poisson(1.2 * _sigmoid(deviation[j, 2] + 0.5)))
        stickers.append([" ".join(TACTIC_WORDS[tactic][int(rng.integers(len(TACTIC_WORDS[tactic])))]
                                  for _ in range(int(rng.integers(1, 4)))) for _ in range(n_stick)])
    videos["desc"] = captions
    videos["tags"] = extra_tags
    videos["num_hashtags"] = [len(t) for t in extra_tags]
    videos["has_fyp"] = ["fyp" in t for t in extra_tags]
    videos["stickers"] = stickers
    # Music: a few shared songs per hashtag (universality) or an original sound.
    song_ids, titles, original = [], [], []
    for j in range(n):
        h = videos.at[j, "hashtag"]
        if rng.random() < 0.3:
            song_ids.append(str(7 * 10**18 + stable_int(f"orig/{videos.at[j, 'video_id']}") % 10**17))
            titles.append(f"original sound - {videos.at[j, 'unique_id']}")
            original.append(True)
        else:
            k = int(min(rng.geometric(0.5), 4))
            song_ids.append(str(7 * 10**18 + stable_int(f"song/{h}/{k}") % 10**17))
            titles.append(f"{h} anthem {k}")
            original.append(False)
    videos["music_id"], videos["music_title"], videos["music_original"] = song_ids, titles, original
    videos["voice_over"] = rng.random(n) < spec.voice_share
    return videos


def _listings(videos: pd.DataFrame, tab: pd.DataFrame, spec: WorldSpec, rng: np.random.Generator) -> pd.DataFrame:
    """One row per (video, hashtag listing, scrape day): earliest hashtag plus cross-listings."""
    t = np.arange(1, spec.days_tracked + 1)
    n = len(videos)
    a = np.exp(videos["growth_a"].to_numpy())
    b = np.exp(videos["growth_b"].to_numpy())
    plays = a[:, None] * np.log(t)[None, :] + b[:, None]
    plays = plays * (1 + 0.01 * rng.normal(size=plays.shape))
    final = videos["impressions"].to_numpy()[:, None]
    plays = np.maximum.accumulate(np.minimum(np.round(plays), final), axis=1)  # cumulative counts never fall
    plays[:, -1] = final[:, 0]  # day T is exact: the truth's impressions
    like_rate = _sigmoid(-2.6 + 0.3 * videos["content_3"].to_numpy())
    trend_days = dict(zip(tab["hashtag"], tab["trending_days"]))
    start_day = dict(zip(tab["hashtag"], tab["start_day"]))
    rows = []
    first_day = videos["first_day"].to_numpy()
    rank = videos["rank"].to_numpy()
    cross = rng.random(n) < spec.cross_listed_share
    tags = tab["hashtag"].tolist()
    for j in range(n):
        listings = [(videos.at[j, "hashtag"], int(first_day[j]), 0)]
        if cross[j]:
            other = tags[int(rng.integers(len(tags)))]
            if other != videos.at[j, "hashtag"]:
                # cross-listed later than the earliest appearance, and never before the other hashtag exists
                listings.append((other, max(int(first_day[j]) + int(rng.integers(1, 4)), int(start_day[other])), 1))
        for hashtag, d0, is_cross in listings:
            for k in range(max(0, spec.days_tracked - (d0 - int(first_day[j])))):
                day = d0 + k
                tt = day - int(first_day[j])  # index into the video's own growth path
                rows.append((j, hashtag, day, tt + 1, is_cross,
                             int(max(1, rank[j] + (0 if tt == 0 else rng.integers(-3, 4)))),
                             bool(day - start_day[hashtag] < trend_days[hashtag]),
                             int(plays[j, tt]), int(round(plays[j, tt] * like_rate[j]))))
    out = pd.DataFrame(rows, columns=["video", "listed_hashtag", "day", "t", "cross_listed", "listing_rank",
                                      "hashtag_trending", "plays", "diggs"])
    out["shares"] = (out["diggs"] * 0.02).round().astype(np.int64)
    out["comments"] = (out["diggs"] * 0.01).round().astype(np.int64)
    return out


def _creator_posts(videos: pd.DataFrame, creators: pd.DataFrame, spec: WorldSpec,
                   rng: np.random.Generator) -> pd.DataFrame:
    """Each creator's post list: earlier posts (hearts drawn around the talent level) plus the corpus videos."""
    start = dt.datetime.fromisoformat(spec.start_date).replace(tzinfo=dt.timezone.utc)
    first_post = {}
    for j in range(len(videos)):
        ts = start + dt.timedelta(days=float(videos.at[j, "first_day"]) - float(videos.at[j, "video_age"]))
        first_post.setdefault(videos.at[j, "creator"], []).append((ts, j))
    rows = []
    for i in range(len(creators)):
        mine = sorted(first_post.get(i, []))
        earliest = mine[0][0] if mine else start
        n_past = int(1 + rng.negative_binomial(2, 2 / 42))
        ages = np.sort(rng.uniform(1, 400, n_past))[::-1]
        hearts = np.round(np.exp(creators.at[i, "log_past_hearts_level"] - 0.5 + rng.normal(size=n_past)))
        for age, heart in zip(ages, hearts):
            ts = earliest - dt.timedelta(days=float(age))
            rows.append((i, str(stable_int(f"post/{i}/{age}") + 65 * 10**17), int(ts.timestamp()), int(heart), -1))
        for ts, j in mine:
            rows.append((i, videos.at[j, "video_id"], int(ts.timestamp()), -1, j))
    return pd.DataFrame(rows, columns=["creator", "post_id", "create_time", "diggs", "video"])


def truth_tables(world: World, log_followers_grid: np.ndarray) -> dict[str, pd.DataFrame]:
    """Truth files: per-video h and FEI on the grid, per-video facts, campaign FEI by tier."""
    v = world.videos
    h_follow = fei_integral(world.fei_params, log_followers_grid, LOG_FOLLOWERS_REF)
    base = (v["h_at_followers"] - fei_integral(world.fei_params, v["log_followers"].to_numpy()[:, None],
                                               LOG_FOLLOWERS_REF)[:, 0]).to_numpy()
    fei = fei_curve(world.fei_params, log_followers_grid)
    n, g = fei.shape
    grid = pd.DataFrame({
        "video_id": np.repeat(v["video_id"].to_numpy(), g),
        "log_followers": np.tile(log_followers_grid, n),
        "h": (base[:, None] + h_follow).ravel(),
        "fei": fei.ravel(),
    })
    tiers = []
    followers_grid = np.exp(log_followers_grid)
    for name, lo, hi in TIERS:
        mask = (followers_grid >= lo) & (followers_grid < hi)
        tiers.append(pd.Series(fei[:, mask].mean(axis=1) if mask.any() else np.nan, name=name))
    tier_tab = pd.concat(tiers, axis=1)
    tier_tab["hashtag"] = v["hashtag"].to_numpy()
    tier_tab["campaign_type"] = v["campaign_type"].to_numpy()
    campaign = tier_tab[tier_tab["campaign_type"] != "organic"].groupby(["hashtag", "campaign_type"]).mean().reset_index()
    return {"videos": v.drop(columns=["tags", "stickers"]), "fei_grid": grid, "campaign_tiers": campaign,
            "hashtags": world.hashtags}
