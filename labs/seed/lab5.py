import gc

big_data = [i for i in range(1000000)]
del big_data
collected = gc.collect()
print(collected)
