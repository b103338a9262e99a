"""The Llama-2 (SentencePiece BPE) tokenizer of the WordLlama table, in pure Python.

Why not ``tokenizers``: it is the only reason the default install would pull the
Hugging Face stack (``tokenizers``, ``huggingface-hub``, ``hf-xet``, ``fsspec``: ~35 MB),
and the static embedding needs only the multiset of token ids of a prompt. This reads the
same ``tokenizer.json`` and gives the same ids as ``tokenizers.Tokenizer.encode(text,
add_special_tokens=False)`` for it (a test compares the two on thousands of prompts):

- the special tokens (``<unk>``, ``<s>``, ``</s>``) written in the text are matched first,
  as ``tokenizers`` does; each stretch between them is normalised on its own: ``"▁"``
  prepended, every space replaced by ``"▁"``;
- BPE as ``tokenizers`` runs it: characters (UTF-8 bytes as ``<0xNN>`` tokens where a
  character is not in the vocabulary), then repeatedly the adjacent pair of lowest merge
  rank, leftmost first, with stale heap entries skipped;
- no vocabulary token has a ``"▁"`` after another character, so no merge crosses the start
  of a ``"▁"`` run: the text is cut there into words, each merged once and cached (short
  ones). Nor does any merge involve a byte token or a character no merge names (CJK outside
  the vocabulary, digits): a word is cut at those too. A long word (base64) costs
  O(n log n), never O(n²).
"""

from __future__ import annotations

import heapq
import json
import re
from pathlib import Path

SPACE = "\u2581"
#: a run of "▁" and the characters up to the next "▁": the unit no merge crosses
_WORD = re.compile(f"{SPACE}*[^{SPACE}]+|{SPACE}+")
#: words up to this long are cached (a prompt's words repeat; a long one seldom does)
_CACHED_CHARS = 64


class BPETokenizer:
    """Token ids of a text for a ``tokenizers`` JSON with a Llama-2 style BPE model."""

    def __init__(self, vocab: dict[str, int], merges: list[str] | list[list[str]], special: list[str],
                 cache_size: int = 65_536) -> None:
        self.vocab = vocab
        self._byte_ids = [vocab[f"<0x{b:02X}>"] for b in range(256)]
        self._merges: dict[tuple[int, int], tuple[int, int]] = {}
        for rank, merge in enumerate(merges):
            left, right = merge.split(" ") if isinstance(merge, str) else merge
            self._merges[(vocab[left], vocab[right])] = (rank, vocab[left + right])
        merging = {tid for pair in self._merges for tid in pair}
        #: characters that take part in no merge (their own single token, or byte tokens
        #: when not in the vocabulary: no merge involves a byte token): no merge crosses them
        self._inert = {token for token, tid in vocab.items() if len(token) == 1 and tid not in merging}
        self._special = {token: vocab[token] for token in special}
        self._split = re.compile("|".join(re.escape(t) for t in sorted(special, key=len, reverse=True))) \
            if special else None
        self._cache: dict[str, tuple[int, ...]] = {}  # bounded: emptied when full (thread-safe under the GIL)
        self._cache_size = int(cache_size)

    @classmethod
    def from_file(cls, path: str | Path) -> "BPETokenizer":
        """Read a ``tokenizers`` JSON; anything but the normaliser and model this class
        implements is refused rather than tokenised differently."""
        with open(path, encoding="utf-8") as fh:
            spec = json.load(fh)
        model, normalizer = spec.get("model") or {}, spec.get("normalizer") or {}
        steps = [(n.get("type"), n.get("prepend"), (n.get("pattern") or {}).get("String"), n.get("content"))
                 for n in normalizer.get("normalizers", [])]
        expected = [("Prepend", SPACE, None, None), ("Replace", None, " ", SPACE)]
        if (model.get("type") != "BPE" or not model.get("byte_fallback") or spec.get("pre_tokenizer") is not None
                or model.get("continuing_subword_prefix") or model.get("end_of_word_suffix") or model.get("dropout")
                or model.get("ignore_merges") or normalizer.get("type") != "Sequence" or steps != expected):
            raise ValueError(f"{path}: not a Llama-2 style BPE tokenizer (Prepend '▁', spaces to '▁', byte "
                             "fallback, no pre-tokenizer)")
        vocab = model["vocab"]
        bad = [t for t in vocab if re.search(f"[^{SPACE}]{SPACE}", t)]
        if bad:
            raise ValueError(f"{path}: token {bad[0]!r} has '▁' inside a word; words cannot be merged one by one")
        special = [t["content"] for t in spec.get("added_tokens", []) if not t.get("normalized", True)]
        return cls(vocab, model["merges"], special)

    def encode(self, text: str) -> list[int]:
        """The ids ``tokenizers`` gives with ``add_special_tokens=False``."""
        ids: list[int] = []
        start = 0
        if self._split is not None:
            for match in self._split.finditer(text):
                self._encode_normalised(text[start:match.start()], ids)
                ids.append(self._special[match.group()])
                start = match.end()
        self._encode_normalised(text[start:], ids)
        return ids

    def _encode_normalised(self, text: str, ids: list[int]) -> None:
        if not text:
            return
        for word in _WORD.findall(SPACE + text.replace(" ", SPACE)):
            cached = self._cache.get(word)
            if cached is None:
                cached = self._word(word)
                if len(word) <= _CACHED_CHARS:
                    if len(self._cache) >= self._cache_size:
                        self._cache.clear()
                    self._cache[word] = cached
            ids.extend(cached)

    def _word(self, word: str) -> tuple[int, ...]:
        """A word's ids: its stretches between inert characters merged one by one."""
        out: list[int] = []
        run: list[int] = []
        vocab, inert, byte_ids = self.vocab, self._inert, self._byte_ids
        for ch in word:
            tid = vocab.get(ch)
            if tid is not None and ch not in inert:
                run.append(tid)
                continue
            if run:
                out.extend(self._merge(run))
                run = []
            if tid is None:
                out.extend(byte_ids[b] for b in ch.encode("utf-8", "surrogatepass"))
            else:
                out.append(tid)
        if run:
            out.extend(self._merge(run))
        return tuple(out)

    def _merge(self, symbols: list[int]) -> list[int]:
        n = len(symbols)
        if n < 2:
            return symbols
        merges = self._merges
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap = []
        for i in range(n - 1):
            hit = merges.get((symbols[i], symbols[i + 1]))
            if hit is not None:
                heap.append((hit[0], i, hit[1]))
        heapq.heapify(heap)
        while heap:
            _, pos, new_id = heapq.heappop(heap)
            if not alive[pos]:
                continue
            right = nxt[pos]
            if right >= n:
                continue
            hit = merges.get((symbols[pos], symbols[right]))
            if hit is None or hit[1] != new_id:  # a stale entry: the pair changed since
                continue
            symbols[pos] = new_id
            alive[right] = False
            nxt[pos] = nxt[right]
            if nxt[pos] < n:
                prv[nxt[pos]] = pos
            left = prv[pos]
            if left >= 0:
                hit = merges.get((symbols[left], new_id))
                if hit is not None:
                    heapq.heappush(heap, (hit[0], left, hit[1]))
            if nxt[pos] < n:
                hit = merges.get((new_id, symbols[nxt[pos]]))
                if hit is not None:
                    heapq.heappush(heap, (hit[0], pos, hit[1]))
        return [symbols[i] for i in range(n) if alive[i]]
