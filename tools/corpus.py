#!/usr/bin/python3
"""Generates the toy corpora in data/ from a small seeded grammar.

    /usr/bin/python3 tools/corpus.py [--out data] [--seed 1]

Writes (all lowercase, words separated by one space, no punctuation):
  data/corpus.txt     English sentences, one a line, with their split:
                      "train<TAB>sentence" or "test<TAB>sentence"
  data/parallel.tsv   split, English source, target (the made-up language
                      "Tiral"), and the word alignment: space-separated
                      "s-t" pairs, 0-based word positions of source and target
  data/lexicon.tsv    the English -> Tiral dictionary (sense-tagged)

Tiral, the target language, is made up: every English word (per sense: the
river "bank" and the money "bank" are different Tiral words) has exactly one
Tiral word, so each target word aligns to exactly one source word. Its word
order differs from English: subject, object, place phrases, then the verb
(SOV); adjectives and the determiner come after the noun ("the big dog" ->
"dog big the"); prepositions come after their noun phrase (postpositions).

The output depends only on the seed and this file (Python's random module
with a fixed seed is stable across Python 3 versions for the calls used here:
random.Random.random, choice via _randbelow, shuffle).
"""
import argparse
import os
import random

# --------------------------------------------------------------------------
# Lexicon

# sentences about nature: (subject, verb, preposition, object) are fixed pairs
NATURE = [
    ("sun", "rises", "in", "east"), ("sun", "sets", "in", "west"),
    ("sun", "shines", "in", "sky"), ("moon", "shines", "at", "night"),
    ("moon", "rises", "over", "hill"), ("wind", "blows", "from", "north"),
    ("wind", "blows", "from", "sea"), ("rain", "falls", "on", "field"),
    ("snow", "falls", "on", "mountain"), ("river", "flows", "to", "sea"),
    ("stars", "shine", "in", "sky"), ("leaves", "fall", "from", "tree"),
]

# the two senses of "bank"; internally "bank@river" and "bank@money"
RIVER_PEOPLE = ["fisherman", "boy", "girl", "farmer", "child", "man", "woman"]
RIVER_ANIMALS = ["duck", "frog", "goat", "dog", "fox", "bird"]
MONEY_PEOPLE = ["woman", "man", "teacher", "farmer", "baker", "doctor", "king", "student"]
WATERS = ["river", "stream", "lake"]


class NP:
    """A noun phrase: determiner (or None), adjectives, noun, optional PP after it."""

    def __init__(self, noun, det="the", adjs=(), post=None):
        self.det, self.adjs, self.noun, self.post = det, list(adjs), noun, post

    def english(self):
        w = ([self.det] if self.det else []) + self.adjs + [self.noun]
        return w + (self.post.english() if self.post else [])

    def tiral(self):
        """Word indices into english(): noun, adjectives, determiner, then the PP."""
        n0 = 1 if self.det else 0
        idx = [n0 + len(self.adjs)] + list(range(n0, n0 + len(self.adjs)))
        if self.det:
            idx.append(0)
        if self.post:
            base = n0 + len(self.adjs) + 1
            idx += [base + i for i in self.post.tiral()]
        return idx


class PP:
    """A prepositional phrase (English) = postpositional phrase (Tiral)."""

    def __init__(self, prep, np):
        self.prep, self.np = prep, np

    def english(self):
        return [self.prep] + self.np.english()

    def tiral(self):
        return [1 + i for i in self.np.tiral()] + [0]


class Words:
    """A fixed word group kept in its order in both languages (time phrases)."""

    def __init__(self, words):
        self.words = list(words)

    def english(self):
        return list(self.words)

    def tiral(self):
        return list(range(len(self.words)))


class Clause:
    """subject verb [object] [phrases...]  ->  subject [object] [phrases...] verb."""

    def __init__(self, subj, verb, obj=None, phrases=()):
        self.subj, self.verb, self.obj, self.phrases = subj, verb, obj, list(phrases)

    def parts(self):
        return [self.subj, Words([self.verb])] + ([self.obj] if self.obj else []) + self.phrases

    def english(self):
        out = []
        for p in self.parts():
            out += p.english()
        return out

    def tiral(self):
        parts = self.parts()
        starts, pos = [], 0
        for p in parts:
            starts.append(pos)
            pos += len(p.english())
        order = [0] + list(range(2, len(parts))) + [1]  # verb last
        idx = []
        for k in order:
            idx += [starts[k] + i for i in parts[k].tiral()]
        return idx


class Sentence:
    """A clause and its full stop, which stays last in both languages."""

    def __init__(self, clause):
        self.clause = clause

    def english(self):
        return self.clause.english() + ["."]

    def tiral(self):
        return self.clause.tiral() + [len(self.clause.english())]


# --------------------------------------------------------------------------
# Templates. Who does what is constrained (each subject has its own few
# verbs, each verb its own preposition and objects, possessives agree with
# the subject), so the next word is often predictable from the context.

GENDER = {"man": "his", "woman": "her", "boy": "his", "girl": "her", "king": "his",
          "queen": "her", "teacher": "her", "farmer": "his", "doctor": "his", "baker": "her",
          "student": "his", "child": "her"}

# verb -> (preposition or None, object nouns, determiner kind)
#   determiner kind: "the", "a", "poss" (his/her/its agreeing with the subject), "some", None
FRAMES = {
    "sits":     ("on", ["mat", "chair", "sofa", "bed", "floor"], "the"),
    "sleeps":   ("on", ["bed", "sofa", "floor", "mat"], "poss"),
    "waits":    ("at", ["door", "gate", "station"], "the"),
    "stands":   ("near", ["window", "door", "tree"], "the"),
    "plays":    ("in", ["garden", "park", "yard"], "the"),
    "hides":    ("under", ["table", "bed", "tree"], "the"),
    "walks":    ("to", ["market", "school", "village", "park"], "the"),
    "runs":     ("to", ["river", "forest", "farm", "park"], "the"),
    "drives":   ("to", ["city", "station", "market"], "the"),
    "eats":     (None, ["bread", "soup", "cheese", "fish"], "some"),
    "cooks":    (None, ["dinner", "lunch", "breakfast"], "poss"),
    "drinks":   (None, ["milk", "tea", "water", "coffee"], "some"),
    "reads":    (None, ["book", "letter", "newspaper"], "poss"),
    "writes":   (None, ["letter", "story", "poem"], "a"),
    "carries":  (None, ["bag", "box", "basket"], "poss"),
    "loses":    (None, ["key", "hat", "ball"], "poss"),
    "chases":   (None, ["mouse", "bird", "ball", "cat"], "the"),
    "watches":  (None, ["birds", "clouds", "children"], "the"),
    "feeds":    (None, ["horse", "cow", "goat", "ducks"], "the"),
    "opens":    (None, ["door", "window", "box"], "the"),
}
PEOPLE_VERBS = ["sits", "waits", "stands", "walks", "drives", "eats", "cooks", "drinks", "reads",
                "writes", "carries", "loses", "watches", "feeds", "opens", "plays"]
ANIMAL_VERBS = ["sits", "sleeps", "hides", "runs", "eats", "drinks", "chases", "plays", "watches"]
ANIMAL_NAMES = ["cat", "dog", "bird", "horse", "cow", "fox", "mouse", "duck", "goat", "rabbit"]
PEOPLE_NAMES = sorted(GENDER)
ADJS = ["big", "small", "old", "young", "happy", "tired", "hungry", "little", "black", "white"]
TIME = [["in", "the", "morning"], ["in", "the", "evening"], ["at", "night"], ["every", "day"]]


def _subject_verbs():
    """Each subject does three or four things: a fixed, seeded choice."""
    r = random.Random(4242)
    out = {}
    for n in PEOPLE_NAMES:
        out[n] = sorted(r.sample(PEOPLE_VERBS, 3))
    for n in ANIMAL_NAMES:
        out[n] = sorted(r.sample(ANIMAL_VERBS, 3))
    out["cat"] = ["sits", "sleeps", "chases"]   # the cat sits on the mat
    return out


SUBJECT_VERBS = _subject_verbs()


def t_frame(rng):
    noun = rng.choice(ANIMAL_NAMES + PEOPLE_NAMES)
    adjs = [rng.choice(ADJS)] if rng.random() < 0.15 else []
    subj = NP(noun, "the", adjs)
    verb = rng.choice(SUBJECT_VERBS[noun])
    prep, objs, dk = FRAMES[verb]
    obj = rng.choice([o for o in objs if o != noun])
    if dk == "poss":
        det = GENDER.get(noun, "its")
    elif dk == "some":
        det = "some" if rng.random() < 0.5 else None
    else:
        det = dk
    np_ = NP(obj, det)
    phrases = [Words(rng.choice(TIME))] if rng.random() < 0.15 else []
    if prep:
        return Clause(subj, verb, phrases=[PP(prep, np_)] + phrases)
    return Clause(subj, verb, np_, phrases)


def t_nature(rng):
    subj, verb, prep, obj = rng.choice(NATURE)
    det = None if subj in ("rain", "snow", "stars", "leaves") and rng.random() < 0.5 else "the"
    if obj == "night":  # "at night" is the time phrase of TIME, in its English order
        return Clause(NP(subj, det), verb, phrases=[Words([prep, obj])])
    return Clause(NP(subj, det), verb, phrases=[PP(prep, NP(obj, "the"))])


def t_bank_river(rng):
    water = rng.choice(WATERS)
    k = rng.randrange(7)
    if k == 0:   # the fisherman sits on the bank of the river
        return Clause(NP(rng.choice(RIVER_PEOPLE)), rng.choice(["sits", "stands", "waits", "sleeps"]),
                      phrases=[PP("on", NP("bank@river", "the", post=PP("of", NP(water))))])
    if k == 1:   # the duck swims to the river bank
        return Clause(NP(rng.choice(RIVER_ANIMALS)), rng.choice(["swims", "walks", "runs"]),
                      phrases=[PP("to", NP("bank@river", "the", [water]))])
    if k == 2:   # the grass grows on the muddy bank
        return Clause(NP(rng.choice(["grass", "reeds", "willow", "moss"]), "the"), "grows",
                      phrases=[PP("on", NP("bank@river", "the", [rng.choice(["muddy", "steep", "green"])]))])
    if k == 3:   # the water floods the bank
        return Clause(NP(rng.choice(["water", "flood", water]), "the"), rng.choice(["floods", "reaches"]),
                      NP("bank@river", "the", post=PP("of", NP(water))) if rng.random() < 0.5 else
                      NP("bank@river", "the", [rng.choice(["muddy", "steep"])]))
    if k == 4:   # the boat drifts toward the bank of the lake
        return Clause(NP(rng.choice(["boat", "log", "canoe"])), rng.choice(["drifts", "floats"]),
                      phrases=[PP("toward", NP("bank@river", "the", post=PP("of", NP(water))))])
    if k == 5:   # the fisherman catches a fish from the bank
        return Clause(NP("fisherman", "the"), "catches", NP("fish", "a"),
                      [PP("from", NP("bank@river", "the", [rng.choice(["muddy", "steep", water])]))])
    # the children play on the bank of the stream
    return Clause(NP(rng.choice(RIVER_ANIMALS + RIVER_PEOPLE)), rng.choice(["plays", "rests"]),
                  phrases=[PP("on", NP("bank@river", "the", post=PP("of", NP(water))))])


def t_bank_money(rng):
    person = NP(rng.choice(MONEY_PEOPLE), "the")
    k = rng.randrange(7)
    if k == 0:   # the woman puts her money in the bank
        return Clause(person, rng.choice(["puts", "keeps", "saves"]),
                      NP(rng.choice(["money", "gold", "savings", "coins"]), rng.choice(["her", "his", None])),
                      [PP("in", NP("bank@money"))])
    if k == 1:   # the man borrows money from the bank
        return Clause(person, rng.choice(["borrows", "takes", "withdraws"]),
                      NP(rng.choice(["money", "cash", "coins"]), rng.choice(["some", None])),
                      [PP("from", NP("bank@money", "the", post=None))])
    if k == 2:   # the bank lends money to the farmer
        return Clause(NP("bank@money"), rng.choice(["lends", "gives", "pays"]),
                      NP(rng.choice(["money", "cash", "interest"]), None),
                      [PP("to", NP(rng.choice(MONEY_PEOPLE)))])
    if k == 3:   # the teacher opens an account at the bank
        return Clause(person, rng.choice(["opens", "closes", "has"]), NP("account", "an"),
                      [PP("at", NP("bank@money", "the", [rng.choice(["big", "new", "old", "city"])]
                                   if rng.random() < 0.3 else []))])
    if k == 4:   # the clerk at the bank counts the money
        return Clause(NP("clerk", "the", post=PP("at", NP("bank@money"))),
                      rng.choice(["counts", "checks"]), NP(rng.choice(["money", "coins", "cash"]), "the"))
    if k == 5:   # the bank opens in the morning
        return Clause(NP("bank@money", "the", [rng.choice(["new", "big", "city"])] if rng.random() < 0.3 else []),
                      rng.choice(["opens", "closes"]), phrases=[Words(rng.choice(TIME[:2]))])
    # the baker walks to the bank
    return Clause(person, rng.choice(["walks", "goes", "drives"]),
                  phrases=[PP("to", NP("bank@money"))] + ([Words(rng.choice(TIME))] if rng.random() < 0.3 else []))


TEMPLATES = [(t_frame, 16), (t_nature, 1), (t_bank_river, 2), (t_bank_money, 2)]

REQUIRED = [
    # (english words with senses, tiral order built by the grammar)
    Clause(NP("sun"), "rises", phrases=[PP("in", NP("east"))]),
    Clause(NP("cat"), "sits", phrases=[PP("on", NP("mat"))]),
]


def pick_template(rng, templates=TEMPLATES):
    total = sum(w for _, w in templates)
    r = rng.random() * total
    for fn, w in templates:
        r -= w
        if r < 0:
            return fn
    return templates[-1][0]


# --------------------------------------------------------------------------
# Coverage: sentences added after the first 5000 (version 2 of the corpus) so
# that the words of the documentation's example sentences are well covered.
# The first 5000 sentences above are drawn exactly as before (same random
# stream); they had the nature words ("sun", "rises", "east", "moon", "wind",
# ...) in only 1-3 sentences each, since their templates make few distinct
# sentences, and no "sees" at all (README.md's translator example). These
# templates draw from their own random stream (seed * 1000 + 2), and new
# English words get Tiral words after all the old ones, so every old pair
# keeps its translation.

PLACES = ["hill", "sea", "mountain", "field", "river", "forest", "village", "city", "lake"]
SKY = [  # subject, verb, phrase, its time phrases
    ("sun", "rises", PP("in", NP("east")), [TIME[0], TIME[3]]),
    ("sun", "sets", PP("in", NP("west")), [TIME[1], TIME[3]]),
    ("moon", "rises", PP("in", NP("east")), [TIME[2], TIME[3]]),
    ("moon", "sets", PP("in", NP("west")), [TIME[2], TIME[3]]),
    ("sun", "shines", PP("in", NP("sky")), [TIME[0], TIME[3]]),
    ("stars", "shine", PP("in", NP("sky")), [TIME[2], TIME[3]]),
    ("moon", "shines", None, [TIME[2]]),   # the moon shines [on the lake] at night .
]
WINDS = ["east", "west", "north", "south"]
SEE_PLACES = ["garden", "park", "yard", "forest", "field"]
POSS_FRAMES = ["reads", "carries", "loses", "cooks"]


def t_sky(rng):
    """the sun rises in the east [over the hill] [in the morning] ."""
    subj, verb, pp, times = rng.choice(SKY)
    phrases = [pp] if pp else []
    if rng.random() < 0.5:
        phrases.append(PP("over" if pp or rng.random() < 0.5 else "on", NP(rng.choice(PLACES))))
    if pp is None or rng.random() < 0.4:
        phrases.append(Words(rng.choice(times)))
    return Clause(NP(subj), verb, phrases=phrases)


def t_weather(rng):
    """the wind blows from the east [over the sea] [at night] . / the rain falls on the field ."""
    if rng.random() < 0.6:
        subj, verb, pp = "wind", "blows", PP("from", NP(rng.choice(WINDS)))
        phrases = [pp] + ([PP("over", NP(rng.choice(PLACES)))] if rng.random() < 0.5 else [])
    else:
        subj, verb = rng.choice([("rain", "falls"), ("snow", "falls")])
        phrases = [PP("on", NP(rng.choice(PLACES)))]
    if rng.random() < 0.4:
        phrases.append(Words(rng.choice(TIME)))
    return Clause(NP(subj), verb, phrases=phrases)


def t_sees(rng):
    """the cat sees the dog [in the garden] [every day] ."""
    who = ANIMAL_NAMES + PEOPLE_NAMES
    subj = rng.choice(who)
    obj = rng.choice([w for w in who if w != subj])
    adj = lambda: [rng.choice(ADJS)] if rng.random() < 0.15 else []  # noqa: E731
    phrases = [PP("in", NP(rng.choice(SEE_PLACES)))] if rng.random() < 0.3 else []
    if rng.random() < 0.15:
        phrases.append(Words(rng.choice(TIME)))
    return Clause(NP(subj, "the", adj()), "sees", NP(obj, "the", adj()), phrases)


def t_poss(rng):
    """the girl reads her book [in the morning] . (every person, the possessive agreeing)"""
    subj = rng.choice(PEOPLE_NAMES)
    verb = rng.choice(POSS_FRAMES)
    phrases = [Words(rng.choice(TIME))] if rng.random() < 0.3 else []
    return Clause(NP(subj), verb, NP(rng.choice(FRAMES[verb][1]), GENDER[subj]), phrases)


COUNTED = ["money", "coins", "cash", "gold", "savings"]


def t_clerk(rng):
    """the clerk at the bank counts the coins [in the morning] . (the first 5000 had 6 such)"""
    bank = NP("bank@money", "the", [rng.choice(["big", "new", "old", "city"])] if rng.random() < 0.3 else [])
    clerk = NP("clerk", "the", [rng.choice(["old", "young", "tired", "happy"])] if rng.random() < 0.3 else [],
               post=PP("at", bank))
    obj = NP(rng.choice(COUNTED), "the")
    phrases = [Words(rng.choice([TIME[0], TIME[1], TIME[3]]))] if rng.random() < 0.4 else []
    return Clause(clerk, rng.choice(["counts", "checks"]), obj, phrases)


def t_banks(rng):
    """Both senses of "bank" in the same places of a sentence: the river bank
    also early, in the subject ("the duck on the muddy bank sleeps ."), the
    money bank also last after an adjective ("the baker walks to the new bank ."),
    and more river banks last ("the man walks to the river bank at night .").
    In the first 5000 the river bank was mostly inside or at the end and the
    money bank mostly last, so where "bank" stood told its sense as much as
    the words around it."""
    r = rng.random()
    if r < 0.25:  # the duck swims to the lake bank [in the morning] .
        return Clause(NP(rng.choice(RIVER_ANIMALS + RIVER_PEOPLE)), rng.choice(["swims", "walks", "runs"]),
                      phrases=[PP("to", NP("bank@river", "the", [rng.choice(WATERS)]))]
                      + ([Words(rng.choice(TIME))] if rng.random() < 0.5 else []))
    if r < 0.5:
        where = NP("bank@river", "the", [rng.choice(["muddy", "steep", "green"])] if rng.random() < 0.5 else [],
                   post=PP("of", NP(rng.choice(WATERS))) if rng.random() < 0.5 else None)
        subj = NP(rng.choice(RIVER_ANIMALS + RIVER_PEOPLE), "the", post=PP("on", where))
        if rng.random() < 0.3:
            return Clause(subj, "catches", NP("fish", "a"))
        return Clause(subj, rng.choice(["sleeps", "rests", "waits"]),
                      phrases=[Words(rng.choice(TIME))] if rng.random() < 0.3 else [])
    bank = NP("bank@money", "the", [rng.choice(["big", "new", "old", "city"])])
    return Clause(NP(rng.choice(MONEY_PEOPLE)), rng.choice(["walks", "goes", "drives"]),
                  phrases=[PP("to", bank)] + ([Words(rng.choice(TIME))] if rng.random() < 0.3 else []))


def t_plants(rng):
    """the grass grows on the muddy bank [of the lake] [every day] . (the first 5000 had 3 with "grass")"""
    if rng.random() < 0.6:
        where = PP("on", NP("bank@river", "the", [rng.choice(["muddy", "steep", "green"])] if rng.random() < 0.7 else [],
                            post=PP("of", NP(rng.choice(WATERS))) if rng.random() < 0.4 else None))
    else:
        where = PP("in", NP(rng.choice(["field", "garden", "park", "forest", "yard"])))
    phrases = [where] + ([Words(rng.choice(TIME))] if rng.random() < 0.3 else [])
    return Clause(NP(rng.choice(["grass", "reeds", "willow", "moss"])), "grows", phrases=phrases)


COVERAGE = [(t_sky, 4), (t_weather, 3), (t_sees, 3), (t_poss, 2), (t_clerk, 2), (t_banks, 4), (t_plants, 2)]
COVERAGE_REQUIRED = [
    Clause(NP("cat"), "sees", NP("dog")),        # README.md: --source "the cat sees the dog"
    Clause(NP("girl"), "reads", NP("book", "her")),  # data/README.md: "the girl reads her book"
]


# --------------------------------------------------------------------------
# Tiral words: made-up, from syllables, one per English word and sense.

CONS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z"]
VOWELS = ["a", "e", "i", "o", "u"]


def make_lexicon(words, seed, new_words=()):
    """Tiral words for `words` (in sorted order), then for `new_words` (the
    words only the coverage sentences have) from the same random stream, so
    adding new words changes no old word's translation."""
    rng = random.Random(seed * 7919 + 17)
    used, lex = set(), {}
    english = set(w.split("@")[0] for w in words)
    english_all = english | set(w.split("@")[0] for w in new_words)
    for group, avoid in ((sorted(words - {"."}), english),
                         (sorted(set(new_words) - set(words) - {"."}), english_all)):
        for w in group:
            while True:
                n = 2 if rng.random() < 0.6 else 3
                cand = "".join(rng.choice(CONS) + rng.choice(VOWELS) for _ in range(n))
                if cand not in used and cand not in avoid:
                    break
            used.add(cand)
            lex[w] = cand
    lex["."] = "."
    assert not set(lex.values()) & (english_all - {"."}), "a Tiral word is an English word"
    return lex


def surface(w):
    return w.split("@")[0]


def draw(rng, required, templates, n, seen, heldout):
    """n distinct sentences (not in seen): the required ones, then drawn from
    templates; returns (train, test), the required ones always in train."""
    items = []
    for c in map(Sentence, required):
        key = " ".join(surface(w) for w in c.english())
        if key not in seen:
            seen.add(key)
            items.append(c)
    n_required = len(items)
    attempts = 0
    while len(items) < n and attempts < 200 * n:
        attempts += 1
        c = Sentence(pick_template(rng, templates)(rng))
        key = " ".join(surface(w) for w in c.english())
        if key in seen:
            continue
        seen.add(key)
        items.append(c)
    # split: the required sentences are always in training; the rest shuffled
    rest = items[n_required:]
    rng.shuffle(rest)
    n_test = int(round(heldout * len(items)))
    return items[:n_required] + rest[n_test:], rest[:n_test]


def generate(seed=1, n_sentences=5000, heldout=0.12, n_coverage=2000):
    seen = set()
    train, test = draw(random.Random(seed), REQUIRED, TEMPLATES, n_sentences, seen, heldout)
    words = set()
    for c in train + test:
        words.update(c.english())
    train2, test2 = draw(random.Random(seed * 1000 + 2), COVERAGE_REQUIRED, COVERAGE, n_coverage,
                         seen, heldout)
    new_words = set()
    for c in train2 + test2:
        new_words.update(c.english())
    lex = make_lexicon(words, seed, new_words)
    train, test = train + train2, test + test2
    rows = []
    for split, group in (("train", train), ("test", test)):
        for c in group:
            en = c.english()
            order = c.tiral()  # order[t] = English position of Tiral word t
            assert sorted(order) == list(range(len(en))), (en, order)
            tgt = [lex[en[i]] for i in order]
            align = " ".join("%d-%d" % (s, t) for t, s in enumerate(order))
            rows.append((split, " ".join(surface(w) for w in en), " ".join(tgt), align,
                         " ".join(en)))
    return rows, lex


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sentences", type=int, default=5000)
    ap.add_argument("--coverage", type=int, default=2000,
                    help="coverage sentences added after the first SENTENCES (default 2000)")
    a = ap.parse_args()
    rows, lex = generate(a.seed, a.sentences, n_coverage=a.coverage)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "corpus.txt"), "w") as f:
        for split, en, _, _, _ in rows:
            f.write("%s\t%s\n" % (split, en))
    with open(os.path.join(a.out, "parallel.tsv"), "w") as f:
        f.write("split\tsource\ttarget\talignment\n")
        for split, en, tg, al, _ in rows:
            f.write("%s\t%s\t%s\t%s\n" % (split, en, tg, al))
    with open(os.path.join(a.out, "senses.tsv"), "w") as f:
        f.write("split\tsentence\tword_pos\tsense\n")
        for split, en, _, _, tagged in rows:
            for i, w in enumerate(tagged.split()):
                if "@" in w:
                    f.write("%s\t%s\t%d\t%s\n" % (split, en, i, w.split("@")[1]))
    with open(os.path.join(a.out, "lexicon.tsv"), "w") as f:
        f.write("english\tsense\ttiral\n")
        for w in sorted(lex):
            e, _, s = w.partition("@")
            f.write("%s\t%s\t%s\n" % (e, s or "-", lex[w]))
    n_train = sum(1 for r in rows if r[0] == "train")
    print("wrote %d sentences (%d train, %d test), %d English words+senses" %
          (len(rows), n_train, len(rows) - n_train, len(lex)))


if __name__ == "__main__":
    main()
