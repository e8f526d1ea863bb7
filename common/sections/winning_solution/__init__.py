"""the optimization ladder from the tutorial recipe, accuracy-gated; its winner"""
