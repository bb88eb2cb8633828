"""cifar10: image classification by transfer learning (pretrained backbone, new head)."""
