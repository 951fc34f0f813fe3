# EXERCISE 05-apgr
def my_apgr(curve, weak, strong):
    """APGR of ``curve`` (columns share and quality) between all-small ``weak`` and all-large ``strong``."""
    points = curve.sort_values("share")
    x, y = points["share"].to_numpy(float), points["quality"].to_numpy(float)
    # trapezoid rule: each stretch between two neighbouring shares counts by its width times its mean height
    area = sum((x[i + 1] - x[i]) * (y[i] + y[i + 1]) / 2 for i in range(len(x) - 1))
    span = x[-1] - x[0]  # 1 for a curve from share 0 to share 1
    return (area - weak * span) / ((strong - weak) * span)
