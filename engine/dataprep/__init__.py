"""Data preparation behind the data stage (engine/stages/data.py): records in, token examples out.

    rows          data files -> rows (records with their origin), templates, splits, bad rows
    tokens        texts -> token ids in bounded memory (pieces, blocks, Arrow columns, truncation)
    instructions  prompt/completion and chat data: examples whose loss falls on the answer alone

Which examples a task wants is its family's business (engine/tasks/): the data stage asks it.
"""
