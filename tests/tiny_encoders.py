"""A tiny BERT-like sentence encoder built from config for tests: nothing is downloaded.

A 2-layer ``BertModel`` (hidden size 32) with random weights and a WordPiece tokenizer
trained here on a few sentences, saved the way the bundled all-MiniLM-L6-v2 is (BERT
special tokens, ``[CLS] ... [SEP]`` post-processor, ``[unusedN]`` placeholders), so
distilling it exercises the same code paths as distilling the real model.
"""

from __future__ import annotations

from pathlib import Path

CORPUS = [
    "How do I reverse a list in Python? Use slicing to get a reversed copy.",
    "How do I sort a list in Python? Call sorted on it to get a new list.",
    "What is the capital of France? The capital of France is Paris.",
    "What is the capital of Italy? The capital of Italy is Rome.",
    "Write a haiku about the sea. Waves fold into foam under the moon.",
    "Translate to German: the cat sleeps. Die Katze schlaeft.",
    "The French Revolution began in 1789 with the storming of the Bastille.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "abcdefghijklmnopqrstuvwxyz 0123456789 .,;:!?'\"-()[]",
]
SPECIAL_TOKENS = ["[PAD]", *(f"[unused{i}]" for i in range(4)), "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_bert(out_dir: str | Path, seed: int = 0) -> Path:
    """Save a 2-layer BERT (hidden size 32) and its WordPiece tokenizer to ``out_dir``."""
    import torch
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(
        CORPUS * 4, trainers.WordPieceTrainer(vocab_size=300, special_tokens=SPECIAL_TOKENS)
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    fast = BertTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
    )
    fast.save_pretrained(str(out))
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tok.token_to_id("[PAD]"),
    )
    BertModel(config).eval().save_pretrained(str(out))
    return out
