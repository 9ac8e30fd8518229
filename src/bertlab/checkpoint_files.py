"""The names of the files in a checkpoint directory, as transformers names them.

A leaf module (it imports nothing of bertlab), so that the checkpoint loader (`bertlab.checkpoint`), the tokenizer
(`bertlab.tokenizer`) and the shipped assets' paths (`bertlab.shipped`) can all use the names without importing
each other.
"""

CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"  # the weights in shards
TORCH_NAME = "pytorch_model.bin"  # older checkpoints: pickled weights
VOCAB_NAME = "vocab.txt"  # one token per line, line number = id: what Google's BERT checkpoints ship
TOKENIZER_FILES = ("tokenizer.json", VOCAB_NAME)  # either one makes a directory a tokenizer
