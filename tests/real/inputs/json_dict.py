# real.python (python-default): a big dict of lists through json, pymalloc on
import json
d = {str(i): [i] * (i % 20) for i in range(100000)}
print(len(json.dumps(d)))
