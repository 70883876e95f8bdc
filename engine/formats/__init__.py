"""Text forms of creative work, shared by the corpora that write them (engine.corpora) and the
checks that read them (engine.checks): each module one form, importing nothing else of engine.
"""
