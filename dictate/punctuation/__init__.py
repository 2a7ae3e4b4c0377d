"""Personal punctuation: a small model trained on the user's own writing (numpy only) that
re-punctuates transcripts in the user's style, with pauses between words as an extra cue.

    model = train_model(read_corpus(["~/writing"]).paragraphs)
    model.save(path); model = load_model(path)
    model.punctuate_words(words, pause_weight=0.3)   # engine words with timestamps -> text
    model.punctuate_text("one paragraph per line")   # text -> text, same words, same order
"""

from dictate.punctuation.corpus import Corpus, read_corpus
from dictate.punctuation.errors import PunctuationError
from dictate.punctuation.evaluate import Report, Style, evaluate, format_report, style_figures
from dictate.punctuation.model import DEFAULT_PAUSE_WEIGHT, PunctuationModel, load_model
from dictate.punctuation.text import CLASS_NAMES, parse, strip_marks
from dictate.punctuation.train import MIN_WORDS, RECOMMENDED_WORDS, TrainOptions, train_model

__all__ = [
    "CLASS_NAMES", "Corpus", "DEFAULT_PAUSE_WEIGHT", "MIN_WORDS", "PunctuationError", "PunctuationModel",
    "RECOMMENDED_WORDS", "Report", "Style", "TrainOptions", "evaluate", "format_report", "load_model", "parse",
    "read_corpus", "strip_marks", "style_figures", "train_model",
]
