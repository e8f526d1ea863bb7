"""3D volume: trains a 3D UNet on the volume's tissue maps, sliding-window segmentation, renderings"""
