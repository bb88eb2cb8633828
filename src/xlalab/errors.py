"""The one exception type that means "the user can fix this"."""


class UserError(Exception):
    """Bad input or bad params. The CLI prints the message as one line and exits 2.

    Messages name the problem and the fix, e.g.
    ``kaggle labels file trainLabels.csv has no column 'label' (columns: id, x); expected
    id,label``.
    """
