"""Real class tables the synthetic datasets are labelled with: COCO ids, VOC, Pets breeds, ImageNet, Caltech-101.

The synthetic raw datasets (``dataset_creation/synthetic.py``) use the official names, ids and
spellings of each dataset so that the readers meet exactly what a real download holds. The ADE20K
table is in ``dataset_creation/synthetic/ade20k_classes.py``.
"""

from __future__ import annotations

# COCO 2017 categories drawn by the synthetic COCO: (id, name, supercategory) as instances_*.json has them.
# Only these are listed in the synthetic json (real ids are not contiguous: 1, 3, 13, ...).
COCO_CATEGORIES: tuple[tuple[int, str, str], ...] = (
    (1, "person", "person"),
    (3, "car", "vehicle"),
    (13, "stop sign", "outdoor"),
    (16, "bird", "animal"),
    (17, "cat", "animal"),
    (18, "dog", "animal"),
    (37, "sports ball", "sports"),
    (44, "bottle", "kitchen"),
    (47, "cup", "kitchen"),
    (62, "chair", "furniture"),
    (72, "tv", "electronic"),
    (85, "clock", "indoor"),
)

# instances_*.json "licenses", as in the COCO 2017 release.
COCO_LICENSES: tuple[tuple[int, str, str], ...] = (
    (1, "Attribution-NonCommercial-ShareAlike License", "http://creativecommons.org/licenses/by-nc-sa/2.0/"),
    (2, "Attribution-NonCommercial License", "http://creativecommons.org/licenses/by-nc/2.0/"),
    (3, "Attribution-NonCommercial-NoDerivs License", "http://creativecommons.org/licenses/by-nc-nd/2.0/"),
    (4, "Attribution License", "http://creativecommons.org/licenses/by/2.0/"),
    (5, "Attribution-ShareAlike License", "http://creativecommons.org/licenses/by-sa/2.0/"),
    (6, "Attribution-NoDerivs License", "http://creativecommons.org/licenses/by-nd/2.0/"),
    (7, "No known copyright restrictions", "http://flickr.com/commons/usage/"),
    (8, "United States Government Work", "http://www.usa.gov/copyright.shtml"),
)

# PASCAL VOC: palette index k (1..20) is VOC_CLASSES[k - 1]; 0 background, 255 void.
VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
# The VOC classes the synthetic VOC draws (aeroplane and tvmonitor included on purpose: their COCO
# names differ, airplane and tv).
VOC_DRAWN: tuple[str, ...] = (
    "aeroplane",
    "bird",
    "bottle",
    "car",
    "cat",
    "chair",
    "dog",
    "person",
    "tvmonitor",
)
VOC_POSES: tuple[str, ...] = ("Frontal", "Left", "Right", "Rear", "Unspecified")


def _pets_breeds() -> tuple[tuple[str, int, int, int], ...]:
    cats = ("Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau", "Maine_Coon",
            "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx")  # fmt: skip
    dogs = ("american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "boxer", "chihuahua",
            "english_cocker_spaniel", "english_setter", "german_shorthaired", "great_pyrenees", "havanese",
            "japanese_chin", "keeshond", "leonberger", "miniature_pinscher", "newfoundland", "pomeranian", "pug",
            "saint_bernard", "samoyed", "scottish_terrier", "shiba_inu", "staffordshire_bull_terrier",
            "wheaten_terrier", "yorkshire_terrier")  # fmt: skip
    # CLASS-ID follows the case-insensitive alphabetical order of the names; BREED ID counts within a species.
    ordered = sorted(cats + dogs, key=str.lower)
    rows = []
    for class_id, name in enumerate(ordered, 1):
        species, breed_id = (1, cats.index(name) + 1) if name in cats else (2, dogs.index(name) + 1)
        rows.append((name, class_id, species, breed_id))
    return tuple(rows)


# Oxford-IIIT Pets: (file-name breed, CLASS-ID 1..37, SPECIES 1 cat / 2 dog, BREED ID within species).
# Cat breeds are capitalised, dog breeds lower case, exactly as the image names spell them.
PETS_BREEDS: tuple[tuple[str, int, int, int], ...] = _pets_breeds()

# The six header lines of the release's annotations/list.txt (its "1-25:Cat 1:12:Dog" is the release's
# own typo: there are 12 cat and 25 dog breeds).
PETS_LIST_HEADER: tuple[str, ...] = (
    "#Image CLASS-ID SPECIES BREED ID",
    "#ID: 1:37 Class ids",
    "#SPECIES: 1:Cat 2:Dog",
    "#BREED ID: 1-25:Cat 1:12:Dog",
    "#All images with 1st letter as captial are cat images",
    "#images with small first letter are dog images",
)

# ImageNet subset (the ten Imagenette classes): synset -> LOC_synset_mapping.txt names.
IMAGENET_SYNSETS: tuple[tuple[str, str], ...] = (
    ("n01440764", "tench, Tinca tinca"),
    ("n02102040", "English springer, English springer spaniel"),
    ("n02979186", "cassette player"),
    ("n03000684", "chain saw, chainsaw"),
    ("n03028079", "church, church building"),
    ("n03394916", "French horn, horn"),
    ("n03417042", "garbage truck, dustcart"),
    ("n03425413", "gas pump, gasoline pump, petrol pump, island dispenser"),
    ("n03445777", "golf ball"),
    ("n03888257", "parachute, chute"),
)

# Caltech-101: the 101 object folders plus BACKGROUND_Google, as 101_ObjectCategories.tar.gz holds them.
CALTECH101_FOLDERS: tuple[str, ...] = (
    "BACKGROUND_Google", "Faces", "Faces_easy", "Leopards", "Motorbikes", "accordion", "airplanes", "anchor",
    "ant", "barrel", "bass", "beaver", "binocular", "bonsai", "brain", "brontosaurus", "buddha", "butterfly",
    "camera", "cannon", "car_side", "ceiling_fan", "cellphone", "chair", "chandelier", "cougar_body",
    "cougar_face", "crab", "crayfish", "crocodile", "crocodile_head", "cup", "dalmatian", "dollar_bill", "dolphin",
    "dragonfly", "electric_guitar", "elephant", "emu", "euphonium", "ewer", "ferry", "flamingo", "flamingo_head",
    "garfield", "gerenuk", "gramophone", "grand_piano", "hawksbill", "headphone", "hedgehog", "helicopter", "ibis",
    "inline_skate", "joshua_tree", "kangaroo", "ketch", "lamp", "laptop", "llama", "lobster", "lotus", "mandolin",
    "mayfly", "menorah", "metronome", "minaret", "nautilus", "octopus", "okapi", "pagoda", "panda", "pigeon",
    "pizza", "platypus", "pyramid", "revolver", "rhino", "rooster", "saxophone", "schooner", "scissors",
    "scorpion", "sea_horse", "snoopy", "soccer_ball", "stapler", "starfish", "stegosaurus", "stop_sign",
    "strawberry", "sunflower", "tick", "trilobite", "umbrella", "watch", "water_lilly", "wheelchair", "wild_cat",
    "windsor_chair", "wrench", "yin_yang",
)  # fmt: skip
# The Caltech-101 folders the synthetic set fills (plus BACKGROUND_Google).
CALTECH_DRAWN: tuple[str, ...] = (
    "Faces", "Leopards", "Motorbikes", "airplanes", "butterfly", "chair", "cup", "stop_sign", "sunflower", "watch",
)  # fmt: skip

# NYUv2 scene categories (the sync training scenes are "<category>_<4 digits>[letter]", the official
# test frames sit in "<category>/").
NYU_CATEGORIES: tuple[str, ...] = (
    "bathroom", "bedroom", "bookstore", "classroom", "dining_room", "home_office", "kitchen", "living_room",
    "office", "playroom", "study",
)  # fmt: skip
NYU_FOCAL = "518.8579"  # the focal-length column of the toolbox's nyu_train.txt / nyu_test.txt
# NYUv2 Kinect RGB intrinsics (fx, fy, cx, cy) at 640x480.
NYU_INTRINSICS = (518.8579, 519.4696, 325.5824, 253.7362)
