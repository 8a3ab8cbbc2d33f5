x = 100
y = 100
print(id(x))
print(id(y))
print(x is y)

a = 9999
b = 9999
print(a is b)
