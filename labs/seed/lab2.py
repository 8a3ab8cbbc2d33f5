import sys

message = "DevSecOps"
print(sys.getrefcount(message))

copy_msg = message
print(sys.getrefcount(message))
