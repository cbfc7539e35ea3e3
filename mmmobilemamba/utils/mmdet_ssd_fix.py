"""Work around an mmdet 3.3.0 bug that breaks SSD inference (validation, test, demo).

``BaseDenseHead._predict_by_feat_single`` reads ``self.loss_cls``, which ``SSDHead`` never
defines (it skips ``AnchorHead.__init__``), so every SSD predict step raises
``AttributeError: 'SSDHead' object has no attribute 'loss_cls'`` (open-mmlab/mmdetection
issues #11305, #11780). Importing this module gives ``SSDHead`` a class-level
``loss_cls = None``, which makes that check false, as intended. The SSDLite configs import it
through ``custom_imports``; it changes nothing when mmdet already defines the attribute.
"""
from mmdet.models.dense_heads.ssd_head import SSDHead

if not hasattr(SSDHead, 'loss_cls'):
    SSDHead.loss_cls = None
