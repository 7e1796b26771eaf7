"""Exact and near-duplicate inputs, grouped: the engine under the dataset health checks and ``jt.split``.

Near-duplicates are found with MinHash LSH (datasketch) over word triples of the normalised text. The
signatures are datasketch's own "affine32" MinHash, computed for all rows at once with numpy instead of one
``MinHash.update_batch`` per row (tested equal), so 10,000 rows of 3,000 characters take about a second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..params.arguments import NEAR_THRESHOLD

THRESHOLD = NEAR_THRESHOLD  # Jaccard similarity of word-triple sets above which two inputs are "near-duplicates"
NUM_PERM = 128
SHINGLE = 3          # words per shingle
SEED = 1
_CHUNK = 1 << 16     # shingles per block: one block of uint32 stays in cache across the permutations
# ASCII punctuation counts as white space: "pain," and "pain" are the same word.
_PUNCT = str.maketrans({c: " " for c in "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"})


def normalise(text: str) -> list[str]:
    """The words of `text` as the checks compare them: case-folded; ASCII punctuation and white space only
    separate words (what `word_hashes` hashes, for reading and for tests)."""
    return re.findall(r"[^\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f]+", text.casefold())


def _fmix64(h: np.ndarray) -> np.ndarray:
    # MurmurHash3's 64-bit finalizer: spreads the combined word hashes over all bits.
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _fmix32(h: np.ndarray) -> np.ndarray:
    # datasketch's affine32 scheme mixes each input hash with MurmurHash3's 32-bit finalizer first.
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


# Bytes that belong to words: ASCII letters and digits, and every byte of a non-ASCII character.
_WORD_BYTE = np.zeros(256, bool)
_WORD_BYTE[[*range(48, 58), *range(65, 91), *range(97, 123), *range(128, 256)]] = True


_BLOCK = 1 << 18     # characters of text hashed at once: the per-byte arrays of one block stay in cache
_P = 0x100000001B3   # odd, so invertible modulo 2**64
_TABLES: list[np.ndarray] = []


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """P**k and P**-k modulo 2**64 for k < n (cached, grown by doubling)."""
    if not _TABLES or len(_TABLES[0]) < n:
        size = max(n, 2 * len(_TABLES[0]) if _TABLES else 1 << 20)
        pw = np.cumprod(np.full(size, _P, dtype=np.uint64)) * np.uint64(pow(_P, -1, 1 << 64))  # P**0, P**1, ...
        inv = np.cumprod(np.full(size, pow(_P, -1, 1 << 64), dtype=np.uint64)) * np.uint64(_P)
        _TABLES[:] = [pw, inv]
    return _TABLES[0], _TABLES[1]


def _block_words(data: bytes, n_texts: int) -> tuple[np.ndarray, np.ndarray]:
    b = np.frombuffer(data, dtype=np.uint8)
    is_word = _WORD_BYTE[b]
    starts = is_word.copy()
    starts[1:] &= ~is_word[:-1]
    start_at = np.flatnonzero(starts)
    counts = np.bincount(np.searchsorted(np.flatnonzero(b == 0), start_at), minlength=n_texts)
    if not len(start_at):
        return np.zeros(0, np.uint64), counts
    ends = is_word.copy()
    ends[:-1] &= ~is_word[1:]
    lengths = np.flatnonzero(ends) - start_at + 1
    first_byte = np.cumsum(lengths) - lengths  # of each word among the word bytes
    at = np.flatnonzero(is_word)
    pw, inv = _powers(len(b))
    # sum of byte * P**(offset in the block), shifted back to the word's start: sum of byte * P**(offset in word)
    words = np.add.reduceat(b[at].astype(np.uint64) * pw[at], first_byte) * inv[start_at]
    return _fmix64(words), counts


def word_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A 64-bit hash of every word of `texts` (the words of `normalise`), concatenated, and the number of
    words per text. Computed on the UTF-8 bytes with numpy, a block of texts at a time (no Python work
    per word), and stable across processes (no salted hash())."""
    hashes, counts = [np.zeros(0, np.uint64)], [np.zeros(0, np.int64)]
    i = 0
    while i < len(texts):
        j, size = i, 0
        while j < len(texts) and (j == i or size + len(texts[j]) <= _BLOCK):
            size += len(texts[j]) + 1
            j += 1
        # texts are separated by one NUL byte (a NUL inside a text is white space)
        data = "\x00".join(t.casefold().replace("\x00", " ") for t in texts[i:j]).encode("utf-8", "surrogatepass")
        h, c = _block_words(data, j - i)
        hashes.append(h)
        counts.append(c)
        i = j
    return np.concatenate(hashes), np.concatenate(counts).astype(np.int64)


def text_keys(words: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """One 64-bit key per text, equal for texts with the same words in the same order."""
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    index_in_text = np.arange(len(words)) - np.repeat(first, counts)
    mixed = _fmix64(words * np.uint64(0x9E3779B97F4A7C15) + index_in_text.astype(np.uint64))
    keys = np.zeros(len(counts), np.uint64)
    nonempty = counts > 0
    keys[nonempty] = np.add.reduceat(mixed, first[nonempty])
    return keys


def shingle_hashes(words: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every run of SHINGLE consecutive words of each text (from `word_hashes`),
    concatenated, and the number per text (0 for texts shorter than SHINGLE words)."""
    shingles = np.maximum(counts - (SHINGLE - 1), 0)
    n = len(words) - (SHINGLE - 1)
    if not shingles.any():
        return np.zeros(0, np.uint32), shingles
    h = np.zeros(n, np.uint64)
    for k in range(SHINGLE):  # polynomial combination of the words, wrapping at 2**64
        h = h * np.uint64(0x100000001B3) + words[k:k + n]
    keep = np.ones(n, bool)  # the shingle ends inside its own text: not at any text's last SHINGLE-1 words
    ends = np.cumsum(counts)
    for k in range(1, SHINGLE):
        at = ends - k
        keep[at[(counts >= k) & (at < n)]] = False
    return (_fmix64(h[keep]) >> np.uint64(32)).astype(np.uint32), shingles


def permutations(num_perm: int = NUM_PERM, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (a, b) for this seed."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    return a.astype(np.uint32), b.astype(np.uint32)


def signatures(shingles: np.ndarray, counts: np.ndarray, num_perm: int = NUM_PERM,
               seed: int = SEED) -> np.ndarray:
    """MinHash signatures (documents x num_perm, uint32), equal to datasketch's
    ``MinHash(num_perm, seed, scheme="affine32").update_batch(...)`` on each document's shingles.
    Documents without shingles get the empty value (all 0xFFFFFFFF)."""
    a, b = permutations(num_perm, seed)
    sig = np.full((len(counts), num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    x = _fmix32(shingles)
    ends = np.cumsum(counts)
    docs = np.flatnonzero(counts)
    first = 0
    while first < len(docs):
        # a block of whole documents, about _CHUNK shingles (one long document may exceed it alone)
        lo = ends[docs[first]] - counts[docs[first]]
        last = max(first + 1, int(np.searchsorted(ends[docs], lo + _CHUNK, side="right")))
        block_docs = docs[first:last]
        hi = ends[block_docs[-1]]
        offsets = ends[block_docs] - counts[block_docs] - lo
        xs = x[lo:hi]
        for p in range(num_perm):
            sig[block_docs, p] = np.minimum.reduceat(xs * a[p] + b[p], offsets)
        first = last
    return sig


# A bucket bigger than this (many inputs sharing a band) is joined as a star around its first member
# instead of all its pairs: the groups stay connected and the work stays linear.
_MAX_BUCKET_PAIRS = 200
# The highest threshold whose LSH bands datasketch can choose for NUM_PERM permutations (2 bands of 64 rows).
_MAX_BANDED_THRESHOLD = 0.98


def similar_pairs(sig: np.ndarray, usable: np.ndarray, threshold: float = THRESHOLD,
                  seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i, j), i < j, of documents whose estimated Jaccard similarity is at least `threshold`:
    candidates are documents that agree on a whole band of their signatures, with the bands datasketch's
    MinHashLSH chooses for this threshold (the same candidates its index gives, found with numpy sorts
    instead of one insert and one query per document), kept when the signatures agree on that share."""
    from datasketch import MinHashLSH

    # datasketch finds no banding of 128 permutations (b < 2) above about 0.98: the bands of the highest
    # threshold it bands give the candidates, and the signatures' agreement below keeps those at `threshold`.
    bands = MinHashLSH(threshold=min(threshold, _MAX_BANDED_THRESHOLD), num_perm=sig.shape[1]).hashranges
    rows = np.flatnonzero(usable)
    sub = sig[rows].astype(np.uint64)
    found = []
    for lo, hi in bands:
        key = np.zeros(len(rows), np.uint64)
        for k in range(lo, hi):  # the band's values, combined; equal bands give equal keys
            key = key * np.uint64(0x100000001B3) + sub[:, k]
        key = _fmix64(key)
        order = np.argsort(key, kind="stable")  # stable: equal keys keep ascending document order
        sorted_keys = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, len(order)])
        for start, size in zip(starts[sizes > 1], sizes[sizes > 1]):
            members = order[start:start + size]
            if size > _MAX_BUCKET_PAIRS:
                found.append(np.stack([np.full(size - 1, members[0]), members[1:]], axis=1))
            else:
                i, j = np.triu_indices(size, 1)
                found.append(np.stack([members[i], members[j]], axis=1))
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    pairs = np.unique(np.concatenate(found), axis=0)
    left, right = rows[pairs[:, 0]], rows[pairs[:, 1]]
    est = (sig[left] == sig[right]).mean(axis=1)
    ok = est >= threshold
    return left[ok].astype(np.int64), right[ok].astype(np.int64), est[ok]


@dataclass
class Groups:
    """Rows grouped by input: `exact[i]` numbers the distinct normalised inputs, `group[i]` the connected
    components of exact and near-duplicate inputs; `similarity[(a, b)]` for near pairs of distinct inputs."""
    exact: np.ndarray
    group: np.ndarray
    similarity: dict[tuple[int, int], float]


def group_texts(texts: list[str], threshold: float = THRESHOLD, near: bool = True) -> Groups:
    """Group texts that are equal after normalisation, or (when `near`) whose word-triple sets have a
    Jaccard similarity of at least `threshold`, transitively (connected components)."""
    import pandas as pd
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    words, counts = word_hashes(texts)
    exact, _ = pd.factorize(text_keys(words, counts))
    exact = exact.astype(np.int64)
    n_distinct = int(exact.max()) + 1 if len(exact) else 0
    similarity: dict[tuple[int, int], float] = {}
    if not near or n_distinct < 2:
        return Groups(exact, exact.copy(), similarity)
    _, first = np.unique(exact, return_index=True)  # one row per distinct input, in order
    keep = np.repeat(np.isin(np.arange(len(texts)), first), counts)  # the words of one row per input
    shingles, per_text = shingle_hashes(words[keep], counts[first])
    sig = signatures(shingles, per_text)
    i, j, sim = similar_pairs(sig, per_text > 0, threshold)
    similarity = {(int(a), int(b)): float(s) for a, b, s in zip(i, j, sim)}
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n_distinct, n_distinct))
    _, component = connected_components(graph, directed=False)
    return Groups(exact, component[exact], similarity)
