"""A tiny chat model built locally (seconds, no network) for mechanics tests.

Real quality claims use the real default model; this one only has to run the same code paths.
"""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "Cystoscopy and removal of foreign objects from the urethra. Urology",
    "Upper gastrointestinal endoscopy. Gastroenterology",
    "CT head without contrast. Neurology",
    "Left hip cemented hemiarthroplasty. Orthopedic",
    "Echocardiogram and chest pain. Cardiovascular / Pulmonary",
    "Assign a label to the given medical transcript: the quick brown fox jumps over the lazy dog.",
    "user assistant system model answer question prompt label input output text",
]


def build_tiny_model(out_dir: str | Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>"]
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", bos_token="<|endoftext|>",
                                   pad_token="<pad>", unk_token=None)
    fast.chat_template = CHATML
    fast.save_pretrained(out)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out)
    return out


# Two labels, 24 rows: enough for a few steps of a tiny job in the export and fault tests.
TWO_LABEL_ROWS = [{"input_text": f"Example number {i} about {t}.", "output_text": t}
                  for i in range(12) for t in ("Urology", "Neurology")]
