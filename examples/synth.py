"""The plain learner: fastai's own synthetic regression learner, default callbacks only.

    loopdoc render examples/synth.py -o loop.html
"""

from fastai.test_utils import synth_learner

learn = synth_learner(n_trn=16, n_val=8)
