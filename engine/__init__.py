"""engine: fine-tune pretrained models on creative work from one declarative spec."""

__version__ = "0.1.0"
