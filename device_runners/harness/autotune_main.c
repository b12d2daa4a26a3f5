/* The main of images without a board loop: run the model once on `autotune_input`, then stop. */
void autotune_measure(void) __attribute__((noreturn));

int main(void)
{
    autotune_measure();
}
