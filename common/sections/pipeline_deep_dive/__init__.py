"""the training step stage by stage (data, transfer, model), recipe and device-resident"""
