"""bin2c.py FILE OUT.c OUT.h NAME: FILE's bytes as `const unsigned char NAME[]` + NAME_size."""
import sys

src, out_c, out_h, name = sys.argv[1:5]
data = open(src, "rb").read()
rows = ",\n".join(", ".join(str(b) for b in data[i:i + 24]) for i in range(0, len(data), 24))
with open(out_c, "w") as f:
    f.write(f'#include <stddef.h>\nconst unsigned char {name}[{len(data)}] = {{\n{rows}\n}};\n'
            f"const size_t {name}_size = {len(data)};\n")
with open(out_h, "w") as f:
    f.write(f"#include <stddef.h>\nextern const unsigned char {name}[{len(data)}];\n"
            f"extern const size_t {name}_size;\n")
