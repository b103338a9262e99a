"""Synthetic streams of one kind of traffic each (chat, maths, multiple choice), seeded,
for tests of what the defaults route on traffic of a single kind. Templates with random
fillings, so scores vary within a stream as they do on real traffic."""

from __future__ import annotations

import random

_NAMES = ["Ana", "Bilal", "Chen", "Dara", "Emeka", "Freya", "Goran", "Hana", "Ivo", "Jun", "Kemal", "Lia"]
_TOPICS = ["my weekend", "the weather", "a new recipe", "my cat", "the football match", "a book I read",
           "learning the guitar", "my commute", "a film last night", "my garden", "a trip to the coast",
           "my new job", "a board game", "the concert", "running in the park"]
_FEELINGS = ["happy", "tired", "excited", "a bit bored", "nervous", "relaxed", "curious", "grateful"]
_CHAT = [
    "Hi {name}! How are you today?",
    "Hey, I'm feeling {feeling} about {topic}. Any thoughts?",
    "Good morning! Can you tell me something nice about {topic}?",
    "Thanks so much for the help earlier, {name}!",
    "What do you think about {topic}? I'm {feeling}.",
    "lol ok, tell me a fun fact about {topic}",
    "I just wanted to say hello and chat about {topic} for a bit.",
    "Can you recommend something to do this evening? I'm {feeling}.",
    "How's your day going? Mine was all about {topic}.",
    "Tell me a short joke about {topic}, please.",
]
_ITEMS = ["apples", "books", "tickets", "marbles", "pencils", "boxes", "cupcakes", "stamps", "bottles"]
_MATHS = [
    "{a} has {x} {item} and buys {y} more, then gives {z} to a friend. How many {item} are left?",
    "A shop sells {item} at ${p} each. {a} buys {x} and pays with ${m}. How much change does {a} get?",
    "If {x} workers build a wall in {y} days, how many days would {z} workers need at the same rate?",
    "{a} reads {x} pages a day. The book has {m} pages. After {y} days, how many pages are left, and how "
    "many more days to finish?",
    "A train travels {x} km in {y} hours, then {z} km in {p} hours. What is its average speed for the trip?",
    "{a} saves ${x} a week for {y} weeks, spends ${z}, and then earns {p}% interest on the rest. How much "
    "does {a} have?",
    "The price of {item} rose from ${x} to ${m}. By what percentage did it rise?",
    "A rectangle is {x} m by {y} m. A path {p} m wide runs around it. What is the area of the path?",
]
_SUBJECTS = ["biology", "chemistry", "history", "geography", "economics", "physics", "law", "philosophy"]
_MC = [
    "Which of the following is studied in {subject}?\nA. {w1}\nB. {w2}\nC. {w3}\nD. {w4}\nAnswer:",
    "In {subject}, which statement is correct?\nA. {w1} causes {w2}\nB. {w3} prevents {w4}\nC. {w2} is a "
    "type of {w1}\nD. None of the above\nAnswer:",
    "A student of {subject} observes {w1} after {w2}. What best explains it?\nA. {w3}\nB. {w4}\nC. {w1} "
    "and {w3}\nD. chance\nAnswer:",
    "Which term from {subject} best matches the description '{w1} related to {w2}'?\nA. {w3}\nB. {w4}\n"
    "C. {w2}\nD. {w1}\nAnswer:",
]
_WORDS = ["osmosis", "inflation", "entropy", "feudalism", "erosion", "catalysis", "sovereignty", "momentum",
          "photosynthesis", "tariffs", "oxidation", "plate tectonics", "utilitarianism", "precedent", "mitosis",
          "supply shocks", "refraction", "the Treaty of Westphalia", "monsoons", "isotopes", "consent",
          "diffusion", "the invisible hand", "half-life"]


def chat_prompts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(_CHAT).format(name=rng.choice(_NAMES), topic=rng.choice(_TOPICS),
                                     feeling=rng.choice(_FEELINGS)) for _ in range(n)]


def maths_prompts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        x, y, z, p = (rng.randint(2, 90) for _ in range(4))
        out.append(rng.choice(_MATHS).format(a=rng.choice(_NAMES), item=rng.choice(_ITEMS), x=x, y=y, z=z, p=p,
                                             m=x * y + rng.randint(1, 500)))
    return out


def multiple_choice_prompts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        w = rng.sample(_WORDS, 4)
        out.append(rng.choice(_MC).format(subject=rng.choice(_SUBJECTS), w1=w[0], w2=w[1], w3=w[2], w4=w[3]))
    return out


STREAMS = {"chat": chat_prompts, "maths": maths_prompts, "multiple_choice": multiple_choice_prompts}
