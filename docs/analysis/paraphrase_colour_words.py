"""How much colour can MiniLM itself carry to the 50 hand-written paraphrases (builtin:paraphrases)?

Two nearest-neighbour readings of the frozen encoder, no U-Net involved:
- caption level: each paraphrase's pooled (masked mean) last-layer state, as the U-Net's text_pool reads it,
  against those of the one-object training captions in the first 4000 ShapesDataset samples; does the nearest
  (cosine) caption have the paraphrase's colour (and shape, motion)?
- word level: each colour word of the paraphrases that no training caption uses, in "a W circle", against the
  training colour words (data.captions.COLOR_WORDS) in "a T circle" (mean of the word's token states,
  Euclidean); is the nearest a word of the right colour? For MiniLM's last layer and its input embeddings.

    python docs/analysis/paraphrase_colour_words.py

Session 11 (this CPU, seconds): 49 of the 50 paraphrases have a word no training caption uses. Caption level:
the nearest training caption has the paraphrase's colour in 30 / 50 (shape 33, motion 16). Word level: 17 of
the 32 unseen colour words are nearest a training word of their colour in MiniLM's last layer (13 / 32 in its
input embeddings); multi-token words fall to "fuchsia" (jade, navy, canary, pumpkin, apricot, milky), purple
and violet to blue, cherry to magenta, ruby to emerald. The shipped cascade's 48 % paraphrase colour
(docs/eval/tiny_paraphrases50.json) is about what MiniLM's own nearest neighbours give (53-60 %).
"""

import re
from collections import Counter

import torch
from torch.nn.functional import normalize

from imagen_video.data.captions import COLOR_WORDS
from imagen_video.data.shapes import ShapesDataset
from imagen_video.eval.prompt_sets import load_prompts
from imagen_video.models.blocks import masked_text_mean
from imagen_video.text.encoder import HFTextEncoder, load_text_encoder

# the paraphrases' colour words, by colour (those in COLOR_WORDS are dropped below: seen in training)
PARAPHRASE_COLOURS = {
    "red": ["scarlet", "cherry", "ruby", "brick-red", "crimson", "cherry-red", "ruby-red"],
    "green": ["jade", "emerald", "mint-green", "grass-green", "leaf-green", "lime"],
    "blue": ["navy", "cobalt", "ultramarine", "cornflower-blue"],
    "yellow": ["canary-yellow", "lemon-yellow", "golden", "gold", "sunflower-yellow", "canary"],
    "cyan": ["teal", "aquamarine", "turquoise", "aqua"],
    "magenta": ["hot-pink", "purple", "orchid-pink", "violet", "fuchsia"],
    "orange": ["pumpkin-coloured", "tangerine", "apricot", "amber", "carrot-orange", "pumpkin"],
    "white": ["pearl", "ivory", "chalk-white", "milky", "snow-white", "pearly"],
}


def pooled(encoder, texts: list[str]) -> torch.Tensor:
    """Masked mean of the token states, [len(texts), D]."""
    parts = []
    for i in range(0, len(texts), 200):
        emb, mask = encoder.encode(texts[i : i + 200])
        parts.append(masked_text_mean(emb, mask))
    return torch.cat(parts)


def word_states(encoder, words: list[str]) -> torch.Tensor:
    """Mean state of each word's tokens in "a W circle" ([CLS] a W... circle [SEP])."""
    emb, mask = encoder.encode([f"a {w} circle" for w in words])
    return torch.stack([emb[i, 2 : int(mask[i].sum()) - 2].mean(0) for i in range(len(words))])


def main() -> None:
    minilm = load_text_encoder("minilm", 32)
    prompts, attributes = load_prompts("builtin:paraphrases", None, 0)
    paraphrases = [dict(a, prompt=p) for p, a in zip(prompts, attributes, strict=True)]
    data = ShapesDataset(frames=2, height=16, width=16, two_object_fraction=0.0, length=4000)
    train = {}
    for i in range(len(data)):
        sample = data[i]
        if not sample["image"]:
            train.setdefault(sample["caption"], sample["attributes"])
    captions = list(train)
    vocabulary = {w for c in captions for w in re.findall(r"[a-z]+", c)}
    unseen = sum(
        any(w not in vocabulary for w in re.findall(r"[a-z]+", p["prompt"].lower())) for p in paraphrases
    )
    print(
        f"{len(captions)} training captions; {unseen} of {len(paraphrases)} paraphrases have an unseen word"
    )

    nearest = (
        normalize(pooled(minilm, [p["prompt"] for p in paraphrases]), dim=-1)
        @ normalize(pooled(minilm, captions), dim=-1).T
    ).argmax(1)
    hits = Counter()
    for p, j in zip(paraphrases, nearest.tolist(), strict=True):
        for key, attribute in (("colour", "color"), ("shape", "shape"), ("motion", "motion")):
            hits[key] += train[captions[j]][attribute] == p[attribute]
    print(
        "caption level, nearest training caption shares:",
        ", ".join(f"{k} {v}/{len(paraphrases)}" for k, v in hits.items()),
    )

    seen = [(c, w) for c, words in COLOR_WORDS.items() for w in words]
    known = {w for _, w in seen}
    tests = [(c, w) for c, words in PARAPHRASE_COLOURS.items() for w in words if w not in known]
    for layers in ((-1,), (0,)):
        encoder = HFTextEncoder("probe", minilm.tokenizer, minilm.model, 32, layers=layers)
        near = torch.cdist(
            word_states(encoder, [w for _, w in tests]), word_states(encoder, [w for _, w in seen])
        ).argmin(1)
        right = [seen[j][0] == c for (c, _), j in zip(tests, near.tolist(), strict=True)]
        wrong = [
            f"{w}->{seen[j][1]}" for (c, w), j, ok in zip(tests, near.tolist(), right, strict=True) if not ok
        ]
        print(
            f"word level, hidden state {layers[0]}: {sum(right)}/{len(tests)} unseen colour words nearest "
            f"a word of their colour; wrong: {', '.join(wrong)}"
        )


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
