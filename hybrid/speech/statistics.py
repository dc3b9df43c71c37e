"""Constants of feature normalisation shared by the features (torch) and the torch-free
runtime of exported systems (`hybrid.deploy`): this module imports neither."""

#: The smallest variance normalised by (Kaldi floors a variance at 1e-20, with a warning;
#: here a smaller one, a feature dimension constant over the frames normalised together, is
#: an error).
MIN_VARIANCE = 1e-20
