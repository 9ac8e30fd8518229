"""Label conventions that the data side (masking, tasks, evaluation) and the model side (heads, losses) share.

Kept below both, so that preparing data never has to import a model module.
"""

IGNORE_INDEX = -100  # label of positions that carry no loss (unmasked tokens, padding, sub-word pieces)
