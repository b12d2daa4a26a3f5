"""Hand-written firmware models for simulator tests: a model.h and model.c whose model_invoke
runs `body`, to time known instruction sequences and memory patterns."""
from pathlib import Path


def write_c_model(src: Path, body: str, input_bytes: int, output_bytes: int, declarations: str = "") -> Path:
    """`src`/model.h and model.c: `declarations` at file scope, then
    `int model_invoke(const int8_t *input, int8_t *output) { body }`."""
    src.mkdir(parents=True)
    (src / "model.h").write_text(
        f"#include <stdint.h>\n#define MODEL_INPUT_SIZE {input_bytes}\n#define MODEL_OUTPUT_SIZE {output_bytes}\n"
        "int model_invoke(const int8_t *input, int8_t *output);\n")
    (src / "model.c").write_text(f'#include "model.h"\n{declarations}'
                                 f"int model_invoke(const int8_t *input, int8_t *output)\n{{\n{body}}}\n")
    return src
