print("flamespan")
