"""The files of a crystal MODEL_DIR and run directory, by name (no imports: the registration reads them too)."""

CRYSTAL_CHECKPOINT = "crystal_flow.pt"  # the CFM (model.CHECKPOINT_NAME)
SURROGATE_FILE = "surrogate.json"  # the surrogate (MLP) searches optimise against
JUDGE_FILE = "judge.json"  # the independent judge (gradient boosting), evaluation only
REFERENCES_FILE = "chgnet_references.json"  # per-element CHGNet reference energies
TRAINING_FILE = "training.json"  # property, percentiles, thresholds, default target, rows, seed, settings
HOLDOUT_FILE = "holdout.csv"  # the rows flowevo train held out, as in the training CSV
EDITS_CSV = "edits.csv"  # one line per source of an optimize run
