x = 100
print(x, id(x))
x = x + 1
print(x, id(x))

servers = ["Web-01", "Web-02"]
print(servers, id(servers))
servers.append("Web-03")
print(servers, id(servers))
