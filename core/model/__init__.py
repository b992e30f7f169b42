"""The model: nanoGPT's GPT read top to bottom (gpt), and its anatomy in numbers: parameters, memory,
FLOPs (anatomy, torch-free)."""
