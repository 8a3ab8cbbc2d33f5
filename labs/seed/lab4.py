import copy

firewall_rules = [101, [80, 443]]

alias_rules = firewall_rules
shallow_rules = firewall_rules[:]
deep_rules = copy.deepcopy(firewall_rules)

firewall_rules[1].append(22)

print(firewall_rules)
print(alias_rules)
print(shallow_rules)
print(deep_rules)
