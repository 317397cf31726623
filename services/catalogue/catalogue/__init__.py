"""Service catalogue: what the operator sells, on what terms and at what price; schools buying SLAs."""
