"""A tiny random CLIP written in the file layout of a real openai/clip-vit-base-patch32 directory."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
MERGES = [("r", "e"), ("re", "d</w>"), ("c", "i"), ("ci", "r"), ("s", "q"), ("l", "e"), ("m", "o")]


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode character table of byte-level BPE."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = bs[:]
    extra = [b for b in range(256) if b not in bs]
    bs += extra
    cs += [256 + n for n in range(len(extra))]
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def _special(content: str) -> dict:
    return {"content": content, "single_word": False, "lstrip": False, "rstrip": False, "normalized": True}


def _legacy_sub_config(model_type: str, **fields) -> dict:
    """A sub-config in the verbose 4.16-era form the real ViT-B/32 config.json has."""
    return {
        "_name_or_path": "",
        "architectures": None,
        "attention_dropout": 0.0,
        "dropout": 0.0,
        "hidden_act": "quick_gelu",
        "initializer_factor": 1.0,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-05,
        "model_type": model_type,
        "torch_dtype": None,
        "transformers_version": "4.16.0.dev0",
        **fields,
    }


def write_tiny_clip(path: str | Path, weights: str = "model.safetensors", seed: int = 0) -> Path:
    """Write config.json, preprocessor_config.json, tokenizer files and random weights to `path`."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in MERGES]
    tokens += ["<|startoftext|>", "<|endoftext|>"]  # EOS has the highest id, as in the real vocabulary
    (path / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
    (path / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES))
    specials = {
        "bos_token": _special("<|startoftext|>"),
        "eos_token": _special("<|endoftext|>"),
        "unk_token": _special("<|endoftext|>"),
        "pad_token": "<|endoftext|>",
    }
    (path / "special_tokens_map.json").write_text(json.dumps(specials))
    tokenizer_config = {
        **specials,
        "add_prefix_space": False,
        "errors": "replace",
        "do_lower_case": True,
        "name_or_path": "openai/clip-vit-base-patch32",
        "model_max_length": 77,
        "special_tokens_map_file": "./special_tokens_map.json",
        "tokenizer_class": "CLIPTokenizer",
    }
    (path / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    preprocessor = {
        "crop_size": 32,
        "do_center_crop": True,
        "do_normalize": True,
        "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor",
        "image_mean": OPENAI_MEAN,
        "image_std": OPENAI_STD,
        "resample": 3,
        "size": 32,
    }
    (path / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    config = {
        "_name_or_path": "openai/clip-vit-base-patch32",
        "architectures": ["CLIPModel"],
        "initializer_factor": 1.0,
        "logit_scale_init_value": 2.6592,
        "model_type": "clip",
        "projection_dim": 16,
        "text_config": _legacy_sub_config(
            "clip_text_model",
            bos_token_id=0,
            eos_token_id=2,  # the pre-2023 value: pooling at argmax(input_ids), i.e. at the EOS token
            pad_token_id=1,
            hidden_size=32,
            intermediate_size=64,
            max_position_embeddings=77,
            num_attention_heads=2,
            num_hidden_layers=2,
            projection_dim=16,
            vocab_size=len(tokens),
        ),
        "text_config_dict": None,
        "transformers_version": None,
        "vision_config": _legacy_sub_config(
            "clip_vision_model",
            hidden_size=32,
            image_size=32,
            intermediate_size=64,
            num_attention_heads=2,
            num_hidden_layers=2,
            patch_size=8,
            projection_dim=16,
        ),
        "vision_config_dict": None,
    }
    (path / "config.json").write_text(json.dumps(config, indent=2))

    from transformers import AutoTokenizer, CLIPConfig, CLIPModel

    AutoTokenizer.from_pretrained(path).backend_tokenizer.save(str(path / "tokenizer.json"))
    torch.manual_seed(seed)
    state = {k: v.contiguous() for k, v in CLIPModel(CLIPConfig.from_pretrained(path)).state_dict().items()}
    if weights == "model.safetensors":
        save_file(state, str(path / weights), metadata={"format": "pt"})
    else:  # an old pytorch_model.bin also holds the position_ids buffers that newer code no longer has
        state["text_model.embeddings.position_ids"] = torch.arange(77)[None]
        state["vision_model.embeddings.position_ids"] = torch.arange(17)[None]
        torch.save(state, path / weights)
    return path
